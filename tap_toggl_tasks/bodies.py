"""Toggl's bodies read: a page whole, the answer without `per_page` as it arrives.

Toggl sends a bare array, `null` for an empty result; some clients have seen `{"items": [...]}`
or `{"data": [...]}`: all are accepted, anything else is an error naming the request id.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Iterator
from typing import Any

import ijson
import msgspec
import requests

from tap_toggl_tasks.errors import MAX_BODY_CHARS, TogglRetryableError, describe, unexpected_body
from tap_toggl_tasks.values import Task

# Floats become Decimal so that `rate` keeps its exact value on the way to the warehouse.
_decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)


def page_tasks(response: requests.Response) -> list[Task]:
    """The tasks of a page, parsed whole (a page is at most page_size tasks)."""
    try:
        body = _decoder.decode(response.content)
    except msgspec.DecodeError as exc:
        # A cut-off or garbled body is usually a network hiccup: worth another try.
        raise TogglRetryableError(
            f"Toggl answered {describe(response)} with a body that is not JSON ({exc}).",
            response,
        ) from exc
    return _tasks_of(response, body)


def streamed_tasks(response: requests.Response) -> Iterator[Task]:
    """The tasks of a streamed answer, one by one as they arrive: memory stays flat."""
    chunks = response.iter_content(chunk_size=1 << 16)
    head = b""
    for chunk in chunks:
        head += chunk
        if head.strip():
            break
    shape = head.lstrip()[:1]  # the first character tells the body's shape
    try:
        if shape == b"[":
            found = ijson.sendable_list()
            parser = ijson.items_coro(found, "item", use_float=False)
            for chunk in itertools.chain([head], chunks):
                parser.send(chunk)
                yield from found
                del found[:]
            parser.close()
            yield from found
        elif shape == b"{":  # a wrapper: rare, so read whole
            yield from _tasks_of(response, _decoder.decode(head + b"".join(chunks)))
        elif shape not in (b"n", b""):  # `null`: no task
            raise unexpected_body(response, head[:MAX_BODY_CHARS].decode(errors="replace"))
    except (ijson.JSONError, msgspec.DecodeError) as exc:
        raise TogglRetryableError(
            f"Toggl's answer without per_page ({describe(response)}) broke off or is not "
            f"JSON ({exc}); the next run reads it again."
        ) from exc


def _tasks_of(response: requests.Response, body: Any) -> list[Task]:
    if body is None:
        return []
    tasks = body.get("items", body.get("data")) if isinstance(body, dict) else body
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        raise unexpected_body(response, body)
    return tasks
