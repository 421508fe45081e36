"""The yardstick: a sync of /me/tasks in plain Python, `requests` and msgspec, no framework.

It does the tap's work and nothing less, so that the ratio between them is the framework's cost:
the same requests (pages overlapping by one task, as the tap's pager asks for them), the same
record (known fields only, timestamps in one UTC form, permissions as a list), and one Singer
RECORD line per task.

    python -m benchmarks.baseline --api-url URL --api-token TOKEN --fields id,name,... > out
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import sys
from typing import Any

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
    # Decimal, as the tap does, so that `rate` is written digit for digit the same.
    decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
    encoder = msgspec.json.Encoder(decimal_format="number")
    line = bytearray()
    out = sys.stdout.buffer
    offset, last_id, written = 0, None, 0
    while True:
        response = session.get(
            f"{api_url.rstrip('/')}/me/tasks",
            params={
                "include_not_active": "true",
                "meta": "true",
                "per_page": str(page_size),
                "offset": str(offset),
            },
            timeout=300,
        )
        response.raise_for_status()
        tasks: list[dict[str, Any]] = decoder.decode(response.content) or []
        for task in tasks:
            if task["id"] == last_id:
                continue  # the overlap task, already written with the page before
            message = {
                "type": "RECORD",
                "stream": "tasks",
                "record": to_record(task, fields),
                "time_extracted": datetime.datetime.now(datetime.UTC),
            }
            encoder.encode_into(message, line)
            line.extend(b"\n")
            out.write(line)
            written += 1
        if len(tasks) < page_size:
            break
        offset += len(tasks) - 1
        last_id = tasks[-1]["id"]
    out.flush()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--api-token", required=True)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--fields", required=True, help="comma-separated fields of the record")
    args = parser.parse_args(argv)
    sync(args.api_url, args.api_token, args.page_size, frozenset(args.fields.split(",")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
