"""What the tasks state keeps besides the bookmark, and how a state from elsewhere is checked.

- `unfinished_sync`: written after every page of a sync and removed when it completes. A run
  that stops for any reason (quota, failure, SIGTERM, SIGKILL) leaves it, and the next run
  goes on from there instead of starting over:
  `began` (Toggl's clock when the sync began: the highest bookmark it may set), `since` (the
  `since` its pass sends, null for none), `newest_at` (the newest `at` emitted so far) and
  `paging` (the pager's checkpoint: next offset, ids of the last page, ...).
- `largest_page`: the largest page Toggl ever returned; a shorter page is certainly the end.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

UNFINISHED = "unfinished_sync"
LARGEST_PAGE = "largest_page"
# Written by earlier versions (a full sync that had not finished); the unfinished sync's
# progress replaces it, so it is dropped when read.
OLD_DELETIONS_MARK = "deletions_unseen_since"


def progress_problem(tasks_state: Mapping[str, Any]) -> str | None:  # noqa: PLR0911
    """Why the tasks state's own keys are unusable; None when they are fine."""
    largest = tasks_state.get(LARGEST_PAGE)
    if largest is not None and (not isinstance(largest, int) or largest < 0):
        return f"The state's tasks {LARGEST_PAGE} {largest!r} is not a whole number."
    mark = tasks_state.get(OLD_DELETIONS_MARK)
    if mark is not None and not is_timestamp(mark):
        return f"The state's tasks {OLD_DELETIONS_MARK} {mark!r} is not a timestamp."
    unfinished = tasks_state.get(UNFINISHED)
    if unfinished is None:
        return None
    if not isinstance(unfinished, dict) or not is_timestamp(unfinished.get("began")):
        return f"The state's tasks {UNFINISHED} has no `began` timestamp."
    since = unfinished.get("since")
    paging = unfinished.get("paging")
    if since is not None and not isinstance(since, int):
        return f"The state's tasks {UNFINISHED} `since` {since!r} is not UNIX seconds."
    if not isinstance(paging, dict) or not isinstance(paging.get("offset"), int):
        return f"The state's tasks {UNFINISHED} has no `paging` offset."
    if not isinstance(paging.get("previous_ids", []), list):
        return f"The state's tasks {UNFINISHED} `previous_ids` is not a list."
    return None


def is_timestamp(value: Any) -> bool:
    try:
        datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True
