"""The Singer SDK's standard tap tests, against the local Toggl-compatible server."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_toggl_tasks.tap import TapTogglTasks
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer

# The suite reads its config when this module is imported, so the server starts here too.
_server = TogglServer(demo_tasks(300), api_token="standard-suite-token").start()
atexit.register(_server.stop)

TestTapTogglTasks = get_tap_test_class(
    TapTogglTasks,
    config={"api_token": "standard-suite-token", "api_url": _server.url, "page_size": 100},
    parse_env_config=False,
    # No cut-off: a sync cut short lists nothing, and tasks_listings would have no record.
    suite_config=SuiteConfig(max_records_limit=None),
)
