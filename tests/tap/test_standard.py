"""The Singer SDK's standard tap tests, against the local Toggl-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_toggl_tasks.tap import TapTogglTasks
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer

# The suite takes its config (and validates it, listing the streams) when the class is made; the
# server's address replaces this placeholder when the class's tests start (the fixture below), so
# importing this module starts nothing and nothing ever asks the placeholder.
TOKEN = "standard-suite-token"
CONFIG = {"api_token": TOKEN, "api_url": "http://127.0.0.1:9/api/v9", "page_size": 100}

_StandardTests = get_tap_test_class(
    TapTogglTasks,
    config=CONFIG,
    parse_env_config=False,
    # No cut-off: a sync cut short lists nothing, and tasks_listings would have no record.
    suite_config=SuiteConfig(max_records_limit=None),
)


# server_deleted_at is null in every record of a sync without `since` (Toggl leaves deleted tasks
# out of such answers), so the SDK's datetime check of it has no value to parse and warns so; run
# alone, as xdist may place it, that warning is an error. A deleted task's timestamp is checked
# in tests/tap/test_fast_path.py (task 9004) and tests/tap/test_interrupted.py.
@pytest.mark.filterwarnings("ignore:No records were available to test.:UserWarning")
class TestTapTogglTasks(_StandardTests):  # type: ignore[misc,valid-type]
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def toggl(cls) -> Iterator[TogglServer]:
        with TogglServer(demo_tasks(300), api_token=TOKEN) as server:
            CONFIG["api_url"] = server.url
            yield server
