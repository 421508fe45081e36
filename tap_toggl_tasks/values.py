"""Tasks, ids and timestamps as the records and the state hold them."""

from __future__ import annotations

import base64
import datetime
import zlib
from collections.abc import Iterable
from typing import Any

Task = dict[str, Any]


class BadTask(ValueError):
    """A task the tap cannot read: the message says which and what to do."""


def task_time(task: Task, field: str) -> datetime.datetime:
    """A timestamp of a task as an instant: Toggl's format may change (a profile's zone)."""
    value = task.get(field)
    try:
        return as_utc(value)
    except (TypeError, ValueError):
        raise BadTask(
            f"Task {task.get('id')}: its {field} {value!r} is not a timestamp, so the sync "
            "stopped before advancing the bookmark. Report this message: Toggl changed its "
            "format."
        ) from None


def encode_ids(ids: Iterable[int]) -> str:
    """A set of task ids as a short ASCII string (about 3 bytes an id for Toggl's ids)."""
    ordered = sorted(set(ids))
    steps = [b - a for a, b in zip([0, *ordered], ordered, strict=False)]
    text = ",".join(map(str, steps)).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode()


def decode_chunks(chunks: Iterable[str]) -> Iterable[int]:
    for chunk in chunks:
        text = zlib.decompress(base64.b64decode(chunk, validate=True)).decode()
        total = 0
        for step in text.split(",") if text else ():
            total += int(step)
            yield total


def bookmark_form(moment: datetime.datetime) -> str:
    """The one form of every timestamp in records and state, so that they compare as strings."""
    return as_utc(moment).isoformat(timespec="microseconds")


def as_utc(value: Any) -> datetime.datetime:
    """A timestamp (ISO 8601 string or datetime) as an aware UTC datetime; naive means UTC."""
    moment = (
        value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)
    )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)
