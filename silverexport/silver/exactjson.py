"""JSON that keeps numbers as they were written (SPEC §2).

Python's json turns `1E+2` into 100.0, `1e-400` into 0.0, `1e400` into infinity and the
integer `-0` into 0, and `123456789012345678901234567890.123456789` loses digits: all of
them must come back character for character. So the parser here keeps the text of every
number with a fraction or an exponent (as a `JsonFloat`, still a float to type checks, so a
decimal column can refuse it), and of `-0` (`NEGATIVE_ZERO`, still the integer 0), and
`dumps_compact` writes that text back out.
"""

from __future__ import annotations

import json
import math
import re
from json.encoder import encode_basestring  # escapes as json.dumps(ensure_ascii=False)
from typing import Any


class JsonFloat(float):
    """A JSON number with a fraction or an exponent, with `text` as written."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonFloat:
        number = super().__new__(cls, text)  # may be inf or 0.0: only `text` is ever written
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


class NegativeZero(int):
    """The JSON integer `-0`: 0 to arithmetic, `-0` when written (a decimal keeps its text)."""

    def __repr__(self) -> str:
        return "-0"

    __str__ = __repr__


NEGATIVE_ZERO = NegativeZero(0)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int_keeping_negative_zero(text: str) -> int:
    return NEGATIVE_ZERO if text == "-0" else int(text)


_DECODER = json.JSONDecoder(parse_float=JsonFloat, parse_constant=_reject_constant)
# Hooking every integer costs a Python call each, so this decoder is used only for text where
# an integer -0 may be (a -0 followed by the end of a value: rare, and cheap to look for).
_DECODER_WITH_ZERO = json.JSONDecoder(
    parse_float=JsonFloat, parse_int=_int_keeping_negative_zero, parse_constant=_reject_constant
)
_MAYBE_NEGATIVE_ZERO = re.compile(r"-0\s*(?:[,\]}]|$)")


def loads(text: str) -> Any:
    """Parse one JSON text; numbers keep their text (see the module docstring).

    The stdlib parser, not orjson: orjson turns integers beyond 64 bits into floats.
    NaN and Infinity are refused with a ValueError, as any invalid JSON is.
    """
    decoder = _DECODER_WITH_ZERO if _MAYBE_NEGATIVE_ZERO.search(text) else _DECODER
    return decoder.decode(text)


def dumps_compact(value: Any) -> str:
    """Compact JSON, as `json.dumps(value, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)` writes it, except that parsed numbers keep their text.

    Raises ValueError or TypeError for what JSON cannot hold (NaN, sets, ...), and
    RecursionError for nesting too deep to walk.
    """
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, JsonFloat):
        return value.text
    if isinstance(value, int):
        return repr(value) if isinstance(value, NegativeZero) else int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return float.__repr__(value)
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            parts.append(encode_basestring(_key(key)) + ":" + dumps_compact(item))
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list | tuple):
        parts = []
        for item in value:  # a loop, not a comprehension: one frame per level of nesting
            parts.append(dumps_compact(item))
        return "[" + ",".join(parts) + "]"
    raise TypeError(f"a {type(value).__name__} is not JSON")


def _key(key: Any) -> str:
    """Object keys as json.dumps coerces them (for dicts built in Python, not parsed)."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return dumps_compact(key)
    raise TypeError(f"an object key must be a string, not a {type(key).__name__}")
