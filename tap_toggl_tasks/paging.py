"""Reading pages of /me/tasks: the body parsed once, and where the next page starts."""

from __future__ import annotations

import decimal
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PageAt:
    """The page token: a row offset, wrapped so that offset 0 is a token like any other.

    The SDK ends paging on a falsy token, and stepping back can lead to offset 0.
    """

    offset: int


class TasksPaginator(BaseAPIPaginator[PageAt]):
    """Row offsets over a list that may change while it is read, without losing a task.

    Each page after the first starts on the last task of the page before: finding that task
    in the new page proves no row slipped past between the two. When rows before the offset
    disappear (a task deleted, or moved by an edit), the rest shift left and the overlap task
    is missing; the pager then reads the previous page's range again to pick up what shifted
    past it. That costs one request per shift, and at most `MAX_STEP_BACKS` per sync. A shift
    it cannot bridge sets `gap_possible`: the stream then keeps the old bookmark, so the next
    run reads the same tasks again.

    A page shorter than asked is the end, unless Toggl caps its pages: a short page no smaller
    than the largest page Toggl ever returned (`largest_page`, kept in the state) is checked
    with one more request. When that request brings more tasks, the short page's size is
    Toggl's cap (`cap_found`); paging goes on with pages of that size.

    Everything the pager knows between pages is in `checkpoint()`, which a later run passes
    back (`resume`) to carry on where an interrupted sync stopped, still detecting shifts.
    """

    MAX_STEP_BACKS = 5
    # The same page at this many offsets in a row: the server ignores `offset`. (Twice in a
    # row is legitimate: a task inserted before the offset repeats a page of two.)
    SAME_PAGE_LIMIT = 3

    def __init__(
        self, page_size: int, *, largest_page: int = 0, resume: dict[str, Any] | None = None
    ) -> None:
        if page_size < 2:
            raise ValueError("pages overlap by one task, so page_size must be at least 2")
        resume = resume or {}
        super().__init__(start_value=PageAt(int(resume.get("offset", 0))))
        self._asked = page_size
        # rows that make a page full: per_page, or Toggl's cap once found
        self.page_size = int(resume.get("page_size", page_size))
        self.largest_page = largest_page
        self.cap_found: int | None = None
        self.gap_possible = bool(resume.get("gap_possible", False))
        self.step_backs = 0
        # ids of the last page known to join what came before it
        self._previous: list[Any] = list(resume.get("previous_ids", []))
        # while stepping back: ids of the page that did not join, and where to go on after it
        self._stranded: list[Any] | None = resume.get("stranded_ids")
        self._resume_at: int | None = resume.get("resume_at")
        # the size of a short page whose end the current request confirms
        self._confirming: int | None = resume.get("confirming")
        self._next: int | None = None
        self._repeats = 0

    def checkpoint(self) -> dict[str, Any]:
        """What a later run needs to go on from the next page as this pager would."""
        point: dict[str, Any] = {"offset": self._next, "previous_ids": self._previous}
        if self.page_size != self._asked:
            point["page_size"] = self.page_size
        if self._stranded is not None:
            point |= {"stranded_ids": self._stranded, "resume_at": self._resume_at}
        if self._confirming is not None:
            point["confirming"] = self._confirming
        if self.gap_possible:
            point["gap_possible"] = True
        return point

    @property
    def finished_pass(self) -> bool:
        """Whether the page just read was the last."""
        return self._next is None

    def fresh_tasks(self, response: requests.Response) -> list[Task]:
        """The tasks of this page not read on the page(s) just before; decides the next offset."""
        tasks = tasks_in(response)
        offset = self.current_value.offset
        ids = [task.get("id") for task in tasks]
        self._count_repeats(ids, offset, response)

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
            brought_new = any(task_id not in known for task_id in ids)
            self._previous, self._next = ids, self._after(offset, len(ids), brought_new=brought_new)
        elif self.step_backs < self.MAX_STEP_BACKS:
            self.step_backs += 1
            self._stranded = ids
            self._resume_at = self._after(offset, len(ids), brought_new=bool(ids))
            self._next = max(0, offset - self.page_size + 1)
        else:
            self.gap_possible = True
            self._previous, self._next = ids, self._after(offset, len(ids), brought_new=bool(ids))
        return [task for task in tasks if task.get("id") not in known]

    def _after(self, offset: int, rows: int, *, brought_new: bool) -> int | None:
        """The offset of the page after one of `rows` rows at `offset`; None at the end."""
        if self._confirming is not None:
            short, self._confirming = self._confirming, None
            if not brought_new:
                return None  # the short page was the end after all
            self.cap_found = self.page_size = short  # Toggl sent fewer than asked, not the end
        largest_before, self.largest_page = self.largest_page, max(self.largest_page, rows)
        if rows >= self.page_size:
            return offset + rows - 1
        if rows <= 1 or rows < largest_before:
            # Toggl has sent larger pages, so this one is not cut at a cap: it is the end.
            return None
        self._confirming = rows
        return offset + rows - 1

    def _count_repeats(self, ids: list[Any], offset: int, response: requests.Response) -> None:
        self._repeats = self._repeats + 1 if ids and ids == self._previous else 0
        if self._repeats >= self.SAME_PAGE_LIMIT - 1:
            raise _same_page_again(offset, response)

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        # A page can hold only tasks already read (a step back, an insert) and still not be the end.
        return self._next is not None

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self._next is not None

    @override
    def get_next(self, response: requests.Response) -> PageAt | None:
        return None if self._next is None else PageAt(self._next)


def _same_page_again(offset: int, response: requests.Response) -> TogglFatalError:
    # A server that ignores `offset` would otherwise be asked for the same page forever.
    return TogglFatalError(
        f"Toggl returned the same page at {TasksPaginator.SAME_PAGE_LIMIT} offsets in a row "
        f"(the last {offset}, {describe(response)}): it seems to ignore the offset parameter. "
        "Check the api_url setting; as a workaround set page_size above your number of tasks."
    )
