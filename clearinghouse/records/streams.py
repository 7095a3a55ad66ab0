"""Reading request bodies as streams: JSON arrays element by element (ijson), NDJSON line by
line, and an Idempotency-Key store that replays the first answer to the same request."""

import hashlib
import zlib

import ijson
import orjson
from django.db import connection, transaction
from rest_framework import exceptions

from .models import IdempotencyKey

JSON = "application/json"
NDJSON = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
)
SINGLE_OBJECT_LIMIT = 1024 * 1024


class HashingReader:
    """A file-like view of the request body that hashes every byte read (for Idempotency-Key)."""

    def __init__(self, stream):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.pushed = b""

    def read(self, size=-1):
        if size == 0:  # ijson probes read(0) to tell bytes from text
            return b""
        if self.pushed:
            if size is None or size < 0:
                data, self.pushed = self.pushed, b""
                return data + self._read(-1)
            data, self.pushed = self.pushed[:size], self.pushed[size:]
            return data
        return self._read(size)

    def _read(self, size):
        data = self.stream.read(size) if size and size > 0 else self.stream.read()
        self.digest.update(data)
        return data

    def unread(self, data):
        self.pushed = data + self.pushed

    def drain(self):
        while self._read(65536):
            pass

    def hexdigest(self):
        return self.digest.hexdigest()


def first_byte(reader):
    """The first non-blank byte of the body (pushed back for the parser), or b'' when empty."""
    while True:
        chunk = reader.read(4096)
        if not chunk:
            return b""
        stripped = chunk.lstrip()
        if stripped:
            reader.unread(stripped)
            return stripped[:1]


def json_rows(reader):
    """(is_single, iterator of rows) for an application/json body: one object or an array."""
    head = first_byte(reader)
    if head == b"{":
        body = reader.read(SINGLE_OBJECT_LIMIT + 1)
        if len(body) > SINGLE_OBJECT_LIMIT:
            raise exceptions.ParseError(
                "A single record must be under 1 MiB; send batches as arrays."
            )
        try:
            return True, iter([orjson.loads(body)])
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from exc
    if head == b"[":
        return False, _array_items(reader)
    raise exceptions.ParseError(
        "The body must be a JSON object (one record) or an array of records."
    )


def _array_items(reader):
    try:
        yield from ijson.items(reader, "item", use_float=True)
    except ijson.JSONError as exc:
        raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from exc


def ndjson_rows(reader, chunk_size=1 << 20):
    """One record per line; a line that is not JSON becomes a rejected row, the rest go on.

    The body is read in large chunks and split into lines here: a read per line costs more than
    parsing the line."""
    loads, invalid = orjson.loads, orjson.JSONDecodeError
    lineno = 0
    rest = b""
    while rest is not None:
        data = reader.read(chunk_size)
        if data:
            lines = (rest + data).split(b"\n")
            rest = lines.pop()  # an unfinished line waits for the next chunk
        else:
            lines, rest = [rest], None
        for line in lines:
            lineno += 1
            try:
                yield loads(line)
            except invalid:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield loads(line)
                except invalid:
                    yield (None, f"line {lineno} is not valid JSON")


def _check_key(key):
    if len(key) > 200 or not key.isprintable() or not key.strip():
        raise exceptions.ValidationError({"Idempotency-Key": "must be 1-200 printable characters"})


def idempotent(*, partner, key, reader, process):
    """Run ``process()`` → (status, content_type, body) once per (partner, key).

    A replay with the same key and the same body gets the stored answer and changes nothing; the
    same key with a different body is refused (422). The answer is stored in the same transaction
    as the rows it describes, and concurrent requests with one key wait for each other.
    """
    if not key:
        return process()
    _check_key(key)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"idem:{partner.pk}:{key}"],
            )
        stored = IdempotencyKey.objects.filter(partner=partner, key=key).first()
        if stored is not None:
            reader.drain()
            if reader.hexdigest() != stored.request_hash:
                raise IdempotencyMismatch()
            return stored.status_code, stored.content_type, zlib.decompress(bytes(stored.response))
        status, content_type, body = process()
        reader.drain()
        IdempotencyKey.objects.create(
            partner=partner,
            key=key,
            request_hash=reader.hexdigest(),
            status_code=status,
            content_type=content_type,
            response=zlib.compress(body),
        )
        return status, content_type, body


class IdempotencyMismatch(exceptions.APIException):
    status_code = 422
    default_detail = "This Idempotency-Key was used for a different request body."
    default_code = "idempotency_key_reused"
