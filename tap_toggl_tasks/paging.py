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
    """Row offsets: the next page starts after the rows received, and a short page is the last.

    Stopping on a short page (not on an empty one) saves a request per sync, which matters
    under Toggl's 30 requests per hour.
    """

    def __init__(self, page_size: int) -> None:
        super().__init__(start_value=0)
        self.page_size = page_size
        self._previous_ids: tuple[Any, Any] | None = None

    @override
    def has_more(self, response: requests.Response) -> bool:
        tasks = tasks_in(response)
        ids = (tasks[0].get("id"), tasks[-1].get("id")) if tasks else None
        if ids is not None and ids == self._previous_ids:
            # A server that ignores `offset` would otherwise be asked for the same page forever.
            raise TogglFatalError(
                f"Toggl returned the same page twice (offset {self.current_value}, "
                f"{describe(response)}): it seems to ignore the offset parameter. Check the "
                "api_url setting; as a workaround set page_size above your number of tasks."
            )
        self._previous_ids = ids
        return len(tasks) >= self.page_size

    @override
    def get_next(self, response: requests.Response) -> int:
        return self.current_value + len(tasks_in(response))
