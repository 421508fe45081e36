"""Reading pages of /me/tasks: the body parsed once, and where the next page starts."""

from __future__ import annotations

import decimal
from typing import Any

import msgspec
import requests
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_toggl_tasks.errors import TogglFatalError, TogglRetryableError, describe, unexpected_body

Task = dict[str, Any]

# Floats become Decimal so that `rate` keeps its exact value on the way to the warehouse.
_decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
_PARSED = "_toggl_tasks"


def tasks_in(response: requests.Response) -> list[Task]:
    """The tasks of a 200 response, parsed once and kept on it (stream and paginator share it).

    Toggl sends a bare array, `null` for an empty result, and some clients have seen
    `{"items": [...]}` or `{"data": [...]}`; all are accepted, anything else is an error.
    """
    cached: list[Task] | None = response.__dict__.get(_PARSED)
    if cached is not None:
        return cached
    try:
        body = _decoder.decode(response.content)
    except msgspec.DecodeError as exc:
        # A cut-off or garbled body is usually a network hiccup: worth another try.
        raise TogglRetryableError(
            f"Toggl answered {describe(response)} with a body that is not JSON ({exc}).",
            response,
        ) from exc
    if body is None:
        tasks: Any = []
    elif isinstance(body, dict):
        tasks = body.get("items", body.get("data"))
    else:
        tasks = body
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        raise unexpected_body(response, body)
    response.__dict__[_PARSED] = tasks
    return tasks


class TasksPaginator(BaseAPIPaginator[int]):
    """Row offsets over a list that may change while it is read, without losing a task.

    Each page after the first starts on the last task of the page before: finding that task
    in the new page proves no row slipped past between the two. When rows before the offset
    disappear (a task deleted, or moved by an edit), the rest shift left and the overlap task
    is missing; the pager then reads the previous page's range again to pick up what shifted
    past it. That costs one request per shift, and at most `MAX_STEP_BACKS` per sync. A shift
    it cannot bridge sets `gap_possible`: the stream then keeps the old bookmark, so the next
    run reads the same tasks again.

    The sync ends after a short page: Toggl sends fewer rows than asked only at the end.
    """

    MAX_STEP_BACKS = 5

    def __init__(self, page_size: int) -> None:
        if page_size < 2:
            raise ValueError("pages overlap by one task, so page_size must be at least 2")
        super().__init__(start_value=0)
        self.page_size = page_size
        self.gap_possible = False
        self.step_backs = 0
        # ids of the last page known to join what came before it
        self._previous: list[Any] = []
        # while stepping back: ids of the page that did not join, and where to go on after it
        self._stranded: list[Any] | None = None
        self._resume_at: int | None = None
        self._next: int | None = None

    def fresh_tasks(self, response: requests.Response) -> list[Task]:
        """The tasks of this page not read on the page(s) just before; decides the next offset."""
        tasks = tasks_in(response)
        offset = self.current_value
        ids = [task.get("id") for task in tasks]
        if ids and ids == self._previous:
            raise _same_page_twice(offset, response)
        after_page = offset + len(tasks) - 1 if len(tasks) >= self.page_size else None

        known = set(self._previous)
        if self._stranded is not None:
            # This page re-reads the range before the stranded page: it bridges the gap when it
            # starts on tasks already read and reaches the stranded page's first task.
            known.update(self._stranded)
            starts_known = offset == 0 or (bool(ids) and ids[0] in self._previous)
            reaches = not self._stranded or self._stranded[0] in ids
            if not (starts_known and reaches):
                self.gap_possible = True
            self._previous, self._stranded, self._next = self._stranded, None, self._resume_at
        elif offset == 0 or (self._previous and self._previous[-1] in ids):
            # Joined: the overlap task is here (further in, if tasks were inserted before it).
            self._previous, self._next = ids, after_page
        elif self.step_backs < self.MAX_STEP_BACKS:
            self.step_backs += 1
            self._stranded, self._resume_at = ids, after_page
            self._next = max(0, offset - self.page_size + 1)
        else:
            self.gap_possible = True
            self._previous, self._next = ids, after_page
        return [task for task in tasks if task.get("id") not in known]

    @override
    def advance(self, response: requests.Response) -> None:
        # The SDK's advance() ends on a falsy token, but stepping back can lead to offset 0.
        self._page_count += 1
        if self._next is None:
            self._finished = True
        else:
            self._value = self._next

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        # A page can hold only tasks already read (a step back, an insert) and still not be the end.
        return self._next is not None

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self._next is not None

    @override
    def get_next(self, response: requests.Response) -> int | None:
        return self._next


def _same_page_twice(offset: int, response: requests.Response) -> TogglFatalError:
    # A server that ignores `offset` would otherwise be asked for the same page forever.
    return TogglFatalError(
        f"Toggl returned the same page twice (offset {offset}, {describe(response)}): it seems "
        "to ignore the offset parameter. Check the api_url setting; as a workaround set "
        "page_size above your number of tasks."
    )
