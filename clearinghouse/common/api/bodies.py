"""JSON request bodies, bounded before they are parsed: size, nesting depth, string length,
number range and encoding. Every JSON body of the API passes through here, the DRF parser of
ordinary endpoints and the streamed ingests (a JSON array split into its elements, NDJSON line by
line), so that no body can hold a worker or end in a 500:

- size: a DRF body is read up to ``API_MAX_BODY_BYTES`` and refused beyond (413); a streamed
  body up to ``INGEST_MAX_BODY_BYTES``, one element of it up to ``ITEM_MAX_BYTES``;
- depth: at most ``MAX_DEPTH`` levels of arrays and objects (a record needs four). The array
  splitter counts brackets as it reads, so a body of 100,000 nested brackets costs one pass over
  its bytes, never the quadratic work of a parser that names every level it enters;
- strings: at most ``MAX_STRING`` characters, no NUL (PostgreSQL stores none), no lone UTF-16
  surrogate (``"\udc00"``: not a character, and not encodable as UTF-8);
- numbers: finite doubles, integers within 64 bits (a larger integer, as orjson reads it,
  becomes a double; a field that wants an integer then says so);
- moments: ``parse_moment``, with a zone and within the calendar whatever the offset.

A DRF body is walked whole. A batch element is walked only where its brackets could nest too
deep or orjson refused it: the common row goes straight to its kind's validator, which checks
each field's type, length and characters (a walk per row would cost more than parsing it).

An element of a batch that breaks a bound is a rejected row naming its field; the rest of the
batch goes on. A body that is not JSON at all, or an ordinary endpoint's body that breaks one,
is a 400 problem naming the field where there is one.
"""

import json
import math
import re
from datetime import UTC, datetime
from typing import NamedTuple

import orjson
from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

MAX_DEPTH = 16
MAX_STRING = 100_000
ITEM_MAX_BYTES = 1024 * 1024
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
READ_CHUNK = 1 << 16


class BadRow(NamedTuple):
    """An element of a batch that could not be taken: which field, and why (``field`` is None
    when the element as a whole is at fault)."""

    field: str | None
    message: str


class BodyError(Exception):
    """A value the bounds refuse, at a dotted ``path`` (None: the body as a whole)."""

    def __init__(self, path, message):
        super().__init__(message)
        self.path = path
        self.message = message


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The body is too large."
    default_code = "payload_too_large"


# --- one JSON value ---------------------------------------------------------------------------


class _NotFinite(float):
    """What the explaining parser makes of a number that no double holds (``1e400``)."""


def _not_finite(text):
    return _NotFinite("nan")


def _float(text):
    value = float(text)
    return value if math.isfinite(value) else _NotFinite("nan")


def _int(text):
    # As orjson reads them: an integer beyond 64 bits becomes a double.
    value = int(text)
    return value if -(2**63) <= value < 2**64 else _float(text)


_EXPLAIN = json.JSONDecoder(
    parse_float=_float, parse_int=_int, parse_constant=_not_finite, strict=True
).decode


def _join(path, key):
    if isinstance(key, int):
        return f"{path}[{key}]" if path else f"[{key}]"
    return f"{path}.{key}" if path else key


def check_value(value, *, max_depth=MAX_DEPTH, path=None):
    """Raise ``BodyError`` at the first value that breaks a bound, walking without recursion
    (a parser may hand over up to 1,024 levels; Python's own stack holds fewer)."""
    stack = [(value, path, 0)]
    while stack:
        value, where, depth = stack.pop()
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING:
                raise BodyError(where, f"must be at most {MAX_STRING} characters")
            if "\x00" in value:
                raise BodyError(where, "must not contain a NUL character")
            if not value.isascii() and _SURROGATE.search(value):
                raise BodyError(where, "is not valid Unicode (a lone UTF-16 surrogate)")
        elif kind is dict or kind is list:
            if depth >= max_depth:
                raise BodyError(where, f"nests deeper than {max_depth} levels")
            if kind is dict:
                for key, item in value.items():
                    if "\x00" in key or (not key.isascii() and _SURROGATE.search(key)):
                        raise BodyError(where, "has a key that is not valid text")
                    stack.append((item, _join(where, key), depth + 1))
            else:
                stack.extend((item, _join(where, i), depth + 1) for i, item in enumerate(value))
        elif kind is _NotFinite:
            raise BodyError(where, "must be a finite number (this one is out of range)")
        elif kind is int and not INT_MIN <= value <= INT_MAX:
            raise BodyError(where, "is out of range: integers are 64-bit")


_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(data, *, max_depth=MAX_DEPTH, path=None):
    """The JSON value in ``data`` (bytes), within the bounds; ``BodyError`` otherwise, naming
    the field where there is one.

    orjson reads nearly every body; when it refuses one, a second, slower reading finds out
    which value was at fault (a number out of range, a lone surrogate) so that the error can
    name it, or gives the syntax error's position."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        value = _explain(data, exc)
    check_value(value, max_depth=max_depth, path=path)
    return value


def _explain(data, error):
    message = str(error)
    if "depth limit" in message or "recursion" in message:
        raise BodyError(None, f"nests deeper than {MAX_DEPTH} levels") from None
    try:
        text = data.decode() if isinstance(data, bytes | bytearray | memoryview) else data
    except UnicodeDecodeError:
        raise BodyError(None, "is not valid UTF-8") from None
    try:
        return _EXPLAIN(text)
    except (ValueError, RecursionError):
        # The standard parser refuses it too: a syntax error; orjson's message says where.
        raise BodyError(None, f"is not valid JSON: {message}") from None


def element(data, *, line=None):
    """One element of a batch (an array element, an NDJSON line) as its value, or as a
    ``BadRow`` naming the field that breaks a bound. The common element is read by orjson
    alone: the walk over its values runs only where brackets could nest too deep, or where
    orjson refused it (and the explaining parser found out why)."""
    try:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            value = _explain(data, exc)
        else:
            if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
                return value
        check_value(value)
    except BodyError as exc:
        if exc.path is not None:
            return BadRow(exc.path, exc.message)
        return BadRow(None, f"line {line} {exc.message}" if line else f"the row {exc.message}")
    return value


# --- moments ----------------------------------------------------------------------------------

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
# Later than any moment a partner has reason to send, and far enough from datetime.max that
# adding a warranty period or a retention window to it stays a valid date.
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_moment(value):
    """An ISO 8601 date-time with a time zone, as an aware UTC datetime, between 1900 and 9000;
    ``ValueError`` with a message for the caller otherwise. An offset that carries the moment
    past the calendar's ends (``0001-01-01T00:00:00+01:00``) is out of range, not a crash."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("must be an ISO 8601 date-time with a time zone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time with a time zone") from None
    if moment.tzinfo is None:
        raise ValueError("needs a time zone (e.g. Z or +01:00)")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: from 1900 to 9000") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError("is out of range: from 1900 to 9000")
    return moment


# --- the DRF parser ---------------------------------------------------------------------------


class BoundedJSONParser(BaseParser):
    """DRF's JSON parser, bounded: the body is read up to ``API_MAX_BODY_BYTES`` (413 beyond)
    and every value checked; a value out of bounds is a 400 naming its field."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"The body must be at most {limit} bytes.")
        try:
            return loads(data)
        except BodyError as exc:
            if exc.path is None:
                raise exceptions.ParseError(f"The body {exc.message}.") from None
            raise exceptions.ValidationError({exc.path: [exc.message]}) from None


class StreamedBody(BaseParser):
    """Names a media type that a streamed ingest reads itself (the view never asks DRF for
    ``request.data``): it lets content negotiation and the browsable API know what the
    endpoint takes."""

    def parse(self, stream, media_type=None, parser_context=None):
        raise exceptions.ParseError("This endpoint reads its body as a stream.")


class StreamedJSON(StreamedBody):
    media_type = "application/json"


class StreamedNDJSON(StreamedBody):
    media_type = "application/x-ndjson"


STREAMED = [StreamedJSON, StreamedNDJSON]


# --- streams ----------------------------------------------------------------------------------

# From where the scan stands, everything up to the next bracket, comma or unfinished string:
# plain bytes and whole strings (escapes included) are skipped by the regular expression, so
# Python sees only the characters that change the structure. ``\Z``: the buffer ran out.
_STRUCTURE = re.compile(rb'(?:[^][{},"]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+([][{},"]|\Z)', re.S)
BLANK = b" \t\r\n"
# One element of the array, whole, when its brackets nest at most four deep (a record nests
# three): a value, blank space, and the comma or bracket after it, in one match. Most elements
# are read this way, at C speed; the rest (deeper, cut by the end of what was read, empty,
# odd) go through the scan below, bracket by bracket.
_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_PLAIN = r'[^][{}"]++'


def _nesting(inner):
    return rf"(?:{_PLAIN}|{_STRING}|\{{{inner}\}}|\[{inner}\])*+"


_DEEP_3 = _nesting(_nesting(_nesting(rf"(?:{_PLAIN}|{_STRING})*+")))
_ELEMENT = re.compile(
    rf'[ \t\r\n]*+(\{{{_DEEP_3}\}}|\[{_DEEP_3}\]|{_STRING}|[^][{{}}",\s][^][{{}}",]*?)'
    rf"[ \t\r\n]*+([,\]])".encode(),
    re.S,
)
COMMA, OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, QUOTE = 44, 91, 93, 123, 34


def array_elements(reader, *, first=b"", max_depth=MAX_DEPTH, item_max=ITEM_MAX_BYTES):
    """The elements of the JSON array that starts in ``first`` (the bytes read so far, blank
    space and ``[`` first) and goes on in ``reader``: each as its bytes, or as a ``BadRow``
    when it nests deeper than ``max_depth``.

    Brackets are counted, not matched: an element whose brackets do not match is still cut at
    the right place and then refused by the parser. A body that ends inside the array, closes
    it with ``}`` or has more than blank space after it is refused whole (``BodyError``); an
    element over ``item_max`` bytes too (413)."""
    buf, scan, depth, start, deep, elements = bytes(first), 0, 0, None, False, 0
    match = _STRUCTURE.match
    too_deep = BadRow(None, f"the row nests deeper than {max_depth} levels")
    quick = _ELEMENT.match if max_depth >= 4 else (lambda buf, pos: None)
    while True:
        while True:
            if depth == 1 and scan == start and (whole := quick(buf, scan)):
                yield _whole(buf, whole.start(1), whole.end(1), item_max)
                if whole.group(2) == b"]":
                    _expect_the_end(buf[whole.end() :], reader)
                    return
                elements += 1
                start = scan = whole.end()
                continue
            found = match(buf, scan)
            pos = found.end()
            if not found.group(1):  # the buffer ran out
                scan = pos
                break
            char = buf[pos - 1]
            if char == COMMA:
                if depth == 1:
                    elements += 1
                    yield too_deep if deep else _whole(buf, start, pos - 1, item_max)
                    start, deep = pos, False
            elif char in (OPEN_ARRAY, OPEN_OBJECT):
                depth += 1
                if depth == 1:
                    start = pos
                elif depth > max_depth + 1:
                    deep = True
            elif char == QUOTE:  # a string that goes on in the next read
                scan = pos - 1
                break
            else:
                depth -= 1
                if depth == 0:
                    if char != CLOSE_ARRAY:
                        raise BodyError(None, "is not valid JSON: the array closes with '}'")
                    last = b"" if deep else _whole(buf, start, pos - 1, item_max)
                    if deep:
                        yield too_deep
                    elif elements or last.strip(BLANK):  # "[]" holds nothing, "[1,]" two
                        yield last
                    _expect_the_end(buf[pos:], reader)
                    return
            scan = pos
        if start is not None and len(buf) - start > item_max:
            raise PayloadTooLarge(f"An element of the array must be at most {item_max} bytes.")
        data = reader.read(READ_CHUNK)
        if not data:
            raise BodyError(None, "is not valid JSON: it ends inside the array")
        if deep:  # its bytes will not be parsed: keep none of them
            start = None
        keep = start if start is not None else scan
        buf = buf[keep:] + data
        scan -= keep
        if start is not None:
            start = 0


def _whole(buf, start, end, item_max):
    if end - start > item_max:
        raise PayloadTooLarge(f"An element of the array must be at most {item_max} bytes.")
    return buf[start:end]


def _expect_the_end(rest, reader):
    while True:
        if rest.strip(BLANK):
            raise BodyError(None, "is not valid JSON: there is more after the array")
        rest = reader.read(READ_CHUNK)
        if not rest:
            return


def ndjson_lines(reader, chunk_size=1 << 20):
    """The lines of an NDJSON body, numbered from 1, skipping blank ones. The body is read in
    large chunks and split here: a read per line costs more than parsing the line. A line over
    ``ITEM_MAX_BYTES`` is refused whole (it would have to be held to be refused politely)."""
    number = 0
    rest = b""
    while rest is not None:
        data = reader.read(chunk_size)
        if data:
            lines = (rest + data).split(b"\n")
            rest = lines.pop()  # an unfinished line waits for the next chunk
            if len(rest) > ITEM_MAX_BYTES:
                raise PayloadTooLarge(f"A line must be at most {ITEM_MAX_BYTES} bytes.")
        else:
            lines, rest = [rest], None
        for line in lines:
            number += 1
            if line and not line.isspace():
                yield number, line
