"""The smallest SDK tap there is: what `--about` costs before any tap code runs.

python -m benchmarks.plain_tap --about
"""

from __future__ import annotations

from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from typing_extensions import override


class PlainStream(Stream):
    name = "things"
    schema = th.PropertiesList(th.Property("id", th.IntegerType)).to_dict()

    @override
    def get_records(self, context: Any) -> Any:
        yield {"id": 1}


class PlainTap(Tap):
    name = "tap-plain"
    config_jsonschema = th.PropertiesList(th.Property("api_token", th.StringType)).to_dict()

    @override
    def discover_streams(self) -> list[Stream]:
        return [PlainStream(self)]


if __name__ == "__main__":
    PlainTap.cli()
