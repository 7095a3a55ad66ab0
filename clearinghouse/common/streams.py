"""Reading request bodies as streams: a JSON array element by element, NDJSON line by line (both
bounded by ``clearinghouse.common.api.bodies``), and an Idempotency-Key store that replays the first answer
to the same request."""

import hashlib
import zlib

from django.conf import settings
from django.db import connection, transaction
from rest_framework import exceptions

from clearinghouse.common.api.bodies import (
    BLANK,
    ITEM_MAX_BYTES,
    READ_CHUNK,
    BodyError,
    PayloadTooLarge,
    array_elements,
    element,
    ndjson_lines,
)

JSON = "application/json"
NDJSON = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
)


class HashingReader:
    """A file-like view of the request body that hashes every byte read (for Idempotency-Key)
    and refuses a body over ``INGEST_MAX_BODY_BYTES`` (413) whatever its headers said."""

    def __init__(self, stream, limit=None):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.limit = settings.INGEST_MAX_BODY_BYTES if limit is None else limit
        self.total = 0

    def read(self, size=-1):
        data = self.stream.read(size) if size and size > 0 else self.stream.read()
        self.total += len(data)
        if self.total > self.limit:
            raise PayloadTooLarge(f"The body must be at most {self.limit} bytes.")
        self.digest.update(data)
        return data

    def drain(self):
        while self.read(READ_CHUNK):
            pass

    def hexdigest(self):
        return self.digest.hexdigest()


def json_rows(reader):
    """(is_single, iterator of rows) for an application/json body: one object or an array.
    A row is its value, or a ``BadRow`` when it breaks a bound of ``clearinghouse.common.api.bodies``."""
    head = b""
    while not head:
        chunk = reader.read(READ_CHUNK)
        if not chunk:
            break
        head = chunk.lstrip(BLANK)
    if head[:1] == b"{":
        return True, iter([element(_rest_of_one(reader, head))])
    if head[:1] == b"[":
        return False, _refused_whole(array_elements(reader, first=head))
    raise exceptions.ParseError(
        "The body must be a JSON object (one record) or an array of records."
    )


def _rest_of_one(reader, head):
    """The body of a single object, whole; under ``ITEM_MAX_BYTES`` (413 beyond)."""
    parts, size = [head], len(head)
    while size <= ITEM_MAX_BYTES:
        chunk = reader.read(READ_CHUNK)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
    raise PayloadTooLarge(
        f"A single record must be at most {ITEM_MAX_BYTES} bytes; send batches as arrays."
    )


def _refused_whole(elements):
    """Each element parsed (or a ``BadRow``); a body that is not an array at all is a 400."""
    try:
        for data in elements:
            yield data if type(data) is not bytes else element(data)
    except BodyError as exc:
        raise exceptions.ParseError(f"The body {exc.message}.") from None


def ndjson_rows(reader):
    """One record per line; a line that is not JSON, or breaks a bound, becomes a ``BadRow``
    and the rest go on."""
    for number, line in ndjson_lines(reader):
        yield element(line, line=number)


def _check_key(key):
    if len(key) > 200 or not key.isprintable() or not key.strip():
        raise exceptions.ValidationError({"Idempotency-Key": "must be 1-200 printable characters"})


def idempotent(*, store, partner, key, reader, process, method, route):
    """Run ``process()`` → (status, content_type, body) once per (partner, key), remembered in
    ``store`` (a model with the fields of ``clearinghouse.records.models.IdempotencyKey``).

    A replay with the same key, to the same endpoint (``method`` and ``route``, the URL
    pattern), with the same body gets the stored answer and changes nothing; the same key with
    a different body, or sent to another endpoint, is refused (422). The answer is stored in the
    same transaction as the rows it describes, and concurrent requests with one key wait for
    each other.
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
        stored = store.objects.filter(partner=partner, key=key).first()
        if stored is not None:
            if (stored.method, stored.route) != (method, route):
                raise IdempotencyMismatch(
                    f"This Idempotency-Key was used for another endpoint "
                    f"({stored.method} /{stored.route}); use a new key for each request."
                )
            reader.drain()
            if reader.hexdigest() != stored.request_hash:
                raise IdempotencyMismatch()
            return stored.status_code, stored.content_type, zlib.decompress(bytes(stored.response))
        status, content_type, body = process()
        reader.drain()
        store.objects.create(
            partner=partner,
            key=key,
            method=method,
            route=route,
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
