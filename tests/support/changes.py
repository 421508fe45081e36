"""What happens in Toggl between two pipeline runs, and the check that the next run resumed."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from tap_toggl_tasks.settings import LOOKBACK_SECONDS
from tests.support.meltano import Meltano
from toggl_standin.server import TogglServer


def requests_since(toggl: TogglServer, first: int) -> list[dict[str, str]]:
    """The params of the /me/tasks requests from number `first` (0-based) on."""
    return [request.params for request in toggl.requests[first:]]


def change_the_account(toggl: TogglServer) -> None:
    """What happens in Toggl between two runs: a rename, a task done, a new task, a deletion."""
    toggl.modify(5, name='Renamed: "v2" ✓')
    toggl.mark_done(next(i for i, task in sorted(toggl.tasks.items()) if task["active"]))
    toggl.add(name="Brand new 新しい task", permissions=["owner"])
    toggl.delete(9)


def run_after_changes(
    meltano: Meltano, toggl: TogglServer, bookmark: datetime, target: str
) -> None:
    """Change the account, run the pipeline again, and check that it asked Toggl only for what
    changed since the bookmark: a page, the empty page after it, and the changes without
    per_page."""
    change_the_account(toggl)
    # The next run a minute later by Toggl's clock: two runs within one second would share a
    # bookmark (when each began), and the tests check that it moved.
    toggl.clock_offset += timedelta(minutes=1)
    before = len(toggl.requests)
    meltano("run", "tap-toggl-tasks", target)
    since = [params.get("since") for params in requests_since(toggl, before)]
    expected = math.floor(bookmark.timestamp()) - LOOKBACK_SECONDS
    assert since == [str(expected)] * 3, "the run did not resume incrementally"
