"""Type conformance for the flat `tasks` record: the SDK's result, for a fraction of its cost.

The SDK conforms each record by walking the schema for every value, about half the CPU of a
sync. For a flat record that walk changes almost nothing: str, int and None stay as they are
wherever the schema does not say boolean, bool and None stay in boolean fields, finite numbers
and lists of strings stay everywhere. `FlatConformer` checks that a record holds only such
values and then returns it as it is; a record with anything else (a value the SDK would change,
a nested object) goes to the SDK's own function. Either way the result is the SDK's.
"""

from __future__ import annotations

import decimal
import logging
import math
from typing import Any

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_toggl_tasks.sdk_internals import conform_record_data_types

Record = dict[str, Any]

_SCALARS: frozenset[type] = frozenset({str, int, bool, type(None)})
_BOOLEAN_SCALARS: frozenset[type] = frozenset({bool, type(None)})
_NOTHING: frozenset[type] = frozenset()


class FlatConformer:
    """Conforms records to `schema` exactly as the SDK's RECURSIVE conformance does."""

    def __init__(self, stream_name: str, schema: dict[str, Any], logger: logging.Logger) -> None:
        self._stream_name = stream_name
        self._schema = schema
        self._logger = logger
        properties: dict[str, Any] = schema.get("properties", {})
        self._unchanged = {name: _unchanged_types(prop) for name, prop in properties.items()}
        self._string_lists = {
            name for name, prop in properties.items() if _holds_string_lists(prop)
        }
        self._keeps_unknown = bool(schema.get("additionalProperties"))

    def sdk_conform(self, record: Record) -> Record:
        """The SDK's own conformance: the reference, and the way out for unusual records."""
        return conform_record_data_types(
            stream_name=self._stream_name,
            record=record,
            schema=self._schema,
            level=TypeConformanceLevel.RECURSIVE,
            logger=self._logger,
        )

    def conform(self, record: Record) -> Record:
        """`record` conformed: the same dict when the SDK would leave every value as it is."""
        unchanged = self._unchanged
        unknown: list[str] = []
        for name, value in record.items():
            types = unchanged.get(name)
            if types is None:
                unknown.append(name)
            elif value.__class__ not in types and not self._stays(name, value):
                return self.sdk_conform(record)
        if not unknown:
            return record
        if self._keeps_unknown:
            return self.sdk_conform(record)
        # Given only the unknown fields, the SDK logs its own warning (once per set of names).
        self.sdk_conform({name: record[name] for name in unknown})
        return {name: value for name, value in record.items() if name in unchanged}

    def _stays(self, name: str, value: Any) -> bool:
        kind = value.__class__
        if kind is decimal.Decimal:
            return bool(value.is_finite())  # the SDK turns NaN and infinity into null
        if kind is float:
            return math.isfinite(value)
        if kind is list and name in self._string_lists:
            return all(item.__class__ is str for item in value)
        return False


def _types(schema: dict[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if "anyOf" in schema or kind is None:
        return None  # the SDK reads anyOf in ways not worth mirroring: leave it to the SDK
    return {kind} if isinstance(kind, str) else set(kind)


def _unchanged_types(prop: dict[str, Any]) -> frozenset[type]:
    """The Python types the SDK returns unchanged in this property (besides finite numbers)."""
    types = _types(prop)
    if types is None:
        return _NOTHING
    if "boolean" in types:
        return _BOOLEAN_SCALARS  # the SDK turns other values into `value != 0`
    return _SCALARS


def _holds_string_lists(prop: dict[str, Any]) -> bool:
    """Whether the SDK returns a list of strings in this property as an equal list."""
    items = prop.get("items")
    if "prefixItems" in prop or not isinstance(items, dict):
        return False
    types, item_types = _types(prop), _types(items)
    if types is None or item_types is None:
        return False
    return "array" in types and "boolean" not in types and "boolean" not in item_types
