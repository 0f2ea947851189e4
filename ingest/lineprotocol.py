r"""InfluxDB line protocol encoder: byte-for-byte what ``influxdb_client.Point.to_line_protocol`` produces.

``measurement,tag_key=tag_value,... field_key=field_value,... timestamp``

Escaping follows the reference client exactly (tags and fields sorted by key; ``,`` and space escaped in
measurements; ``,``, ``=`` and space in tag keys, tag values and field keys; ``"`` and ``\`` in string
field values; integers with an ``i`` suffix; floats without a trailing ``.0``; booleans as
``true``/``false``; empty tag values, None and non-finite floats skipped). Where the reference client's
output would not come back unchanged from InfluxDB, this encoder refuses instead of corrupting data:

* a backslash or a control character (newline, tab, NUL...) in a measurement, tag key, tag value or field
  key: InfluxDB has no escape for them there (the client writes ``\n`` and the server stores the two
  characters backslash and ``n``; a backslash before an escaped character changes how the line splits),
  and InfluxQL cannot name an identifier holding a NUL,
* a measurement starting with ``#`` (the line would be a comment), empty measurements and field keys,
* integers outside the signed 64-bit range and text that is not valid Unicode.

String field values carry anything: newlines, quotes, backslashes, any Unicode. The tests check this
against the reference client (hypothesis) and against a real influxd (round trip).

>>> encode_point("mattress", {"site": "h1", "device": "m 1"}, {"hr": 61.0, "occupied": True, "seq": 7}, 1000)
'mattress,device=m\\ 1,site=h1 hr=61,occupied=true,seq=7i 1000'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Final

from ingest.errors import LineProtocolError

FieldValue = bool | int | float | str
"""Types a field can hold (``None`` means "absent" and is skipped)."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

_ESCAPE_MEASUREMENT: Final = str.maketrans({",": r"\,", " ": r"\ "})
_ESCAPE_KEY: Final = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_ESCAPE_STRING: Final = str.maketrans({'"': r"\"", "\\": r"\\"})
_UNREPRESENTABLE: Final = re.compile(r"[\x00-\x1f\x7f\\]")
_NEEDS_ESCAPE: Final = frozenset(", =")

_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_MAX: Final = 4096


def _check_identifier(part: str, value: str) -> None:
    if _UNREPRESENTABLE.search(value):
        raise LineProtocolError(part, value, "backslash and control characters cannot be stored unchanged")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LineProtocolError(part, value, "not valid Unicode (lone surrogate)") from None


def escape_measurement(name: str) -> str:
    r"""Escape a measurement name (``,`` and space).

    >>> escape_measurement("door events")
    'door\\ events'
    """
    if not name:
        raise LineProtocolError("measurement", name, "must not be empty")
    if name.startswith("#"):
        raise LineProtocolError("measurement", name, "a line starting with '#' is a comment")
    _check_identifier("measurement", name)
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(key: str, *, part: str = "key") -> str:
    r"""Escape a tag key, tag value or field key (``,``, ``=`` and space).

    >>> escape_key("a=b,c d")
    'a\\=b\\,c\\ d'
    """
    cached = _KEY_CACHE.get(key)
    if cached is not None:
        return cached
    _check_identifier(part, key)
    escaped = key.translate(_ESCAPE_KEY) if not _NEEDS_ESCAPE.isdisjoint(key) else key
    if len(_KEY_CACHE) < _KEY_CACHE_MAX:
        _KEY_CACHE[key] = escaped
    return escaped


def escape_string(value: str) -> str:
    r"""Escape a string field value (without the surrounding quotes): ``"`` and ``\``.

    >>> escape_string('say "hi" \\ bye')
    'say \\"hi\\" \\\\ bye'
    """
    return value.translate(_ESCAPE_STRING)


def format_value(value: FieldValue) -> str | None:
    r"""Format one field value; None for values the reference client skips (non-finite floats).

    >>> [format_value(v) for v in (1.0, 1.5, 3, True, 'x"y', float("nan"))]
    ['1', '1.5', '3i', 'true', '"x\\"y"', None]
    """
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            return None
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
            raise LineProtocolError("field value", value, "integer outside the signed 64-bit range")
        return f"{value}i"
    if kind is str:
        try:
            value.encode("utf-8")  # type: ignore[union-attr]
        except UnicodeEncodeError:
            raise LineProtocolError("field value", value, "not valid Unicode (lone surrogate)") from None
        return f'"{value.translate(_ESCAPE_STRING)}"'  # type: ignore[union-attr]
    # Subclasses (IntEnum, numpy scalars registered as float...) take the slow, exact path.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return format_value(int(value))
    if isinstance(value, float):
        return format_value(float(value))
    if isinstance(value, str):
        return format_value(str(value))
    raise LineProtocolError("field value", value, f"unsupported type {type(value).__name__}")


def series_key(measurement: str, tags: Mapping[str, str | None] | Iterable[tuple[str, str | None]]) -> str:
    """The escaped ``measurement,tag=value,...`` prefix of a line; tags sorted, empty ones skipped.

    >>> series_key("door", {"site": "h1", "device": "d1", "event": None})
    'door,device=d1,site=h1'
    """
    items = tags.items() if isinstance(tags, Mapping) else tags
    out = [escape_measurement(measurement)]
    for key, value in sorted((k, v) for k, v in items if v is not None):
        if key == "" or value == "":
            continue
        out.append(f"{escape_key(key, part='tag key')}={escape_key(value, part='tag value')}")
    return ",".join(out)


def _field_plan(keys: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """Keys in line order with their escaped ``key=`` prefix (None for an empty key: refused if it has a value)."""
    plan = _PLANS.get(keys)
    if plan is None:
        plan = tuple((key, f"{escape_key(key, part='field key')}=" if key else None) for key in sorted(keys))
        if len(_PLANS) >= _KEY_CACHE_MAX:
            _PLANS.clear()
        _PLANS[keys] = plan
    return plan


_PLANS: dict[tuple[str, ...], tuple[tuple[str, str | None], ...]] = {}


def encode_fields(fields: Mapping[str, FieldValue | None]) -> str:
    """The ``key=value,...`` part of a line, sorted by key; raise if no field has a value.

    The sorted, escaped keys are cached per key set (a device kind sends the same fields every time), and exact
    floats, ints and bools are formatted inline; everything else goes through :func:`format_value`.

    >>> encode_fields({"b": 2, "a": "x", "c": None})
    'a="x",b=2i'
    """
    out = []
    for key, prefix in _field_plan(tuple(fields)):
        value = fields[key]
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # type: ignore[operator]  # inf - inf and nan - nan are nan: not stored
                continue
            text = repr(value)
            if text.endswith(".0"):
                text = text[:-2]
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int and INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
            text = f"{value}i"
        elif value is None:
            continue
        else:
            formatted = format_value(value)
            if formatted is None:
                continue
            text = formatted
        if prefix is None:
            raise LineProtocolError("field key", key, "must not be empty")
        out.append(prefix + text)
    if not out:
        raise LineProtocolError("fields", dict(fields), "a point needs at least one field with a value")
    return ",".join(out)


def encode_point(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue | None],
    time: int | None = None,
) -> str:
    """Encode one point as a line (no trailing newline); ``time`` is an integer in the write's precision."""
    line = f"{series_key(measurement, tags)} {encode_fields(fields)}"
    return line if time is None else f"{line} {int(time)}"


def join_lines(lines: Iterable[str]) -> bytes:
    """A request body: lines separated by newlines, UTF-8 encoded."""
    return "\n".join(lines).encode("utf-8")
