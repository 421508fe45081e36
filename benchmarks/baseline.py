"""The yardstick: a sync of /me/tasks in plain Python, `requests`, msgspec and ijson, no framework.

It does the tap's work and nothing less, so that the ratio between them is the framework's cost:
the same requests as the tap's full pass (pages without overlap, each at the offset after the
distinct tasks read so far, until a page brings no task new to the pass; then one request
without `per_page`, Toggl's whole list in one answer, read as a stream), the same record (known
fields only, timestamps in one UTC form, permissions as a list, `_sdc_table_version`), and one
Singer RECORD line per task, a task the pages missed taken from the whole list.

The whole list is parsed with ijson (its C backend, items as they arrive), as the tap does, not
with msgspec: msgspec would be faster but needs the whole body in memory (about 1 KiB a task),
and the baseline must keep to the tap's memory bound for its speed and peak RSS to compare.

    python -m benchmarks.baseline --api-url URL --api-token TOKEN --fields id,name,... > out
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import itertools
import sys
import time
from typing import Any

import ijson
import msgspec
import requests

TIMESTAMP_FIELDS = ("at", "rate_last_updated", "server_deleted_at")


def utc_timestamp(value: str) -> str:
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def to_record(task: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    record = {key: value for key, value in task.items() if key in fields}
    for field in TIMESTAMP_FIELDS:
        if (value := record.get(field)) is not None:
            record[field] = utc_timestamp(value)
    if isinstance(permissions := record.get("permissions"), str):
        record["permissions"] = [permissions]
    return record


def sync(api_url: str, api_token: str, page_size: int, fields: frozenset[str]) -> int:
    """Write every task as a RECORD line to stdout; the number of records written."""
    session = requests.Session()
    session.auth = (api_token, "api_token")
    session.headers["User-Agent"] = "tap-toggl-tasks-baseline"
    url = f"{api_url.rstrip('/')}/me/tasks"
    # The tap's full pass: every task, done and hidden ones too.
    every_task = {"include_not_active": "true", "include_hidden": "true", "meta": "true"}
    # Decimal, as the tap does, so that `rate` is written digit for digit the same.
    decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
    encoder = msgspec.json.Encoder(decimal_format="number")
    line = bytearray()
    out = sys.stdout.buffer
    # A version of this pass's own, as the tap's: its clock in milliseconds.
    version = int(time.time() * 1000)
    seen: set[int] = set()

    def write(task: dict[str, Any]) -> None:
        message = {
            "type": "RECORD",
            "stream": "tasks",
            "record": {**to_record(task, fields), "_sdc_table_version": version},
            "version": version,
            "time_extracted": datetime.datetime.now(datetime.UTC),
        }
        encoder.encode_into(message, line)
        line.extend(b"\n")
        out.write(line)

    offset = 0
    while True:
        params = {**every_task, "per_page": str(page_size), "offset": str(offset)}
        response = session.get(url, params=params, timeout=300)
        response.raise_for_status()
        tasks: list[dict[str, Any]] = decoder.decode(response.content) or []
        new = [task for task in tasks if task["id"] not in seen]
        for task in new:
            seen.add(task["id"])
            write(task)
        if not new:
            break
        offset += len({task["id"] for task in tasks})

    with session.get(url, params=every_task, timeout=300, stream=True) as response:
        response.raise_for_status()
        found = ijson.sendable_list()
        parser = ijson.items_coro(found, "item", use_float=False)
        # The chunks as they arrive (never the whole body), then None for the end.
        for chunk in itertools.chain(response.iter_content(chunk_size=1 << 16), [None]):
            if chunk is None:
                parser.close()  # the end of the body: what is left in the parser comes out
            else:
                parser.send(chunk)
            for task in found:
                if task["id"] not in seen:  # moved past the pages while they were read
                    seen.add(task["id"])
                    write(task)
            del found[:]
    out.flush()
    return len(seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--api-token", required=True)
    parser.add_argument("--page-size", type=int, required=True)
    parser.add_argument("--fields", required=True, help="comma-separated fields of the record")
    args = parser.parse_args(argv)
    sync(args.api_url, args.api_token, args.page_size, frozenset(args.fields.split(",")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
