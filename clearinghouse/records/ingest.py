"""Bulk ingest of interaction records: validate each row, resolve customers as a set, insert as
a set, and say row by row what was accepted and what was rejected and why.

A batch is processed in chunks (bounded memory) inside the caller's transaction, so the request
answers success only once every accepted row is committed, and a rejected row changes nothing.
Replaying a row with the same external id and content answers ``existing`` with the same ref;
the same external id with different content is rejected.
"""

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from clearinghouse.common.api.bodies import parse_moment
from clearinghouse.common.api.schema import SERIAL_PATTERN
from clearinghouse.common.staging import row_source, stage_copy, stage_create
from consent import identity
from consent.services import customer_sources_touch, identities_resolve
from partners.record_kinds import KINDS

from .gtin import normalise_gtin

# Matched whole (``fullmatch``): ``$`` would let a trailing newline through.
EXTERNAL_ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._:/#-]{0,99}"
EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
SERIAL = re.compile(SERIAL_PATTERN.strip("^$"))
FUTURE_TOLERANCE = timedelta(days=1)
RECORD_FIELDS = frozenset({"external_id", "kind", "occurred_at", "customer", "product", "payload"})
CUSTOMER_FIELDS = frozenset({"kind", "value", "sha256"})
PRODUCT_FIELDS = frozenset({"gtin", "serial"})
CHUNK = 2000


class BatchTooLarge(Exception):
    pass


@dataclass
class RowResult:
    index: int
    external_id: str | None
    status: str = "rejected"  # created | existing | rejected
    ref: str | None = None
    errors: list = field(default_factory=list)

    def as_dict(self):
        out = {"index": self.index, "external_id": self.external_id, "status": self.status}
        if self.ref:
            out["ref"] = self.ref
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class CleanRow:
    index: int
    external_id: str
    kind: str
    occurred_at: datetime
    identifier: identity.ParsedIdentifier
    gtin: str
    serial: str
    payload: dict
    content_hash: str


def _parse_customer(customer, partner, memo):
    """(ParsedIdentifier, None) or (None, message); remembered in ``memo`` for string values."""
    kind, value, sha256 = customer.get("kind"), customer.get("value"), customer.get("sha256")
    key = None
    if (
        (kind is None or type(kind) is str)
        and (value is None or type(value) is str)
        and (sha256 is None or type(sha256) is str)
    ):
        key = ("customer", kind, value, sha256)
        if key in memo:
            return memo[key]
    try:
        answer = (
            identity.parse_identifier(
                kind=kind, value=value, sha256=sha256, programme_id=partner.pk
            ),
            None,
        )
    except ValidationError as exc:
        answer = None, " ".join(exc.messages)
    if key is not None:
        memo[key] = answer
    return answer


def _gtin(value, memo):
    """(GTIN-14, None) or (None, message); remembered in ``memo`` for string values."""
    key = ("gtin", value) if type(value) is str else None
    if key in memo:
        return memo[key]
    try:
        answer = normalise_gtin(value), None
    except ValueError as exc:
        answer = None, str(exc)
    if key is not None:
        memo[key] = answer
    return answer


def validate_row(index, row, *, partner, now, memo=None):
    """(CleanRow, None) or (None, RowResult with errors). Never raises for bad input.

    ``memo``: a dict kept for one batch, so that a customer or a GTIN that recurs in it is
    checked once (the answers depend on nothing but the value and the partner)."""
    if memo is None:
        memo = {}
    if not isinstance(row, dict):
        return None, RowResult(
            index, None, errors=[{"field": None, "message": "each record must be a JSON object"}]
        )
    errors = []

    def err(name, message):
        errors.append({"field": name, "message": message})

    external_id = row.get("external_id")
    if not isinstance(external_id, str) or not EXTERNAL_ID.fullmatch(external_id):
        err(
            "external_id",
            "is required: 1-100 letters, digits or . _ : / # -, starting with a letter or digit",
        )
        external_id = (
            external_id if isinstance(external_id, str) and len(external_id) <= 100 else None
        )
    unknown = row.keys() - RECORD_FIELDS
    for name in sorted(unknown):
        err(name, "is not a field of a record")
    kind = KINDS.get(row.get("kind")) if isinstance(row.get("kind"), str) else None
    if kind is None:
        err("kind", f"must be one of {', '.join(KINDS)}")
    occurred_at = None
    try:
        occurred_at = parse_moment(row.get("occurred_at"))
        if occurred_at > now + FUTURE_TOLERANCE:
            err("occurred_at", "is in the future")
    except ValueError as exc:
        err("occurred_at", str(exc))
    parsed = None
    customer = row.get("customer")
    if not isinstance(customer, dict):
        err("customer", 'is required: {"kind": "email"|"phone"|"loyalty", "value" or "sha256"}')
    else:
        extra = customer.keys() - CUSTOMER_FIELDS
        if extra:
            err("customer", f"unknown keys {', '.join(sorted(extra))}")
        else:
            parsed, message = _parse_customer(customer, partner, memo)
            if message:
                err("customer", message)
    gtin = serial = ""
    product = row.get("product")
    if kind is not None:
        if product is None:
            if kind.unit == "required":
                err("product", f'is required for {kind.key}: {{"gtin": …, "serial": …}}')
        elif kind.unit == "none":
            err("product", f"is not allowed for {kind.key}")
        elif not isinstance(product, dict) or product.keys() - PRODUCT_FIELDS:
            err("product", 'must be {"gtin": …, "serial": …}')
        else:
            gtin, message = _gtin(product.get("gtin"), memo)
            if message:
                err("product.gtin", message)
                gtin = ""
            serial = product.get("serial")
            if not isinstance(serial, str) or not SERIAL.fullmatch(serial):
                err("product.serial", "is required: 1-64 letters, digits or . _ / -")
                serial = ""
    payload = None
    if kind is not None:
        payload, payload_errors = kind.validate(row.get("payload", {}))
        for name, message in payload_errors.items():
            err(name, message)
    if errors:
        return None, RowResult(index, external_id, errors=errors)
    digest = hashlib.sha256(
        orjson.dumps(
            [kind.key, occurred_at.isoformat(), parsed.kind, parsed.sha256, gtin, serial, payload],
            option=orjson.OPT_SORT_KEYS,
        )
    ).hexdigest()
    return CleanRow(
        index, external_id, kind.key, occurred_at, parsed, gtin, serial, payload, digest
    ), None


class BatchIngest:
    """Feed rows with ``add``; ``finish`` stores them and returns the row results in order.
    Must run inside a transaction: nothing is visible until the caller commits.

    Valid rows are staged (COPY, in chunks, so memory stays bounded) as they come; ``finish``
    resolves every customer of the batch at once and inserts the records with one statement.
    Doing the database work once per batch, after all the parsing and validating, keeps the
    time a batch holds row locks short and gives each concurrent batch one order in which it
    waits for others (so concurrent batches never deadlock)."""

    def __init__(self, *, partner, max_rows):
        self.partner = partner
        self.max_rows = max_rows
        self.now = timezone.now()
        self.results = []
        self.pending = []
        self.index_of = {}  # external id -> row index, for the rows staged
        self.identifiers = {}  # (kind, namespace, sha256) -> [number, parsed, categories]
        self.staged = False
        self.count = 0
        self.memo = {}

    def add(self, row):
        if self.count >= self.max_rows:
            raise BatchTooLarge(self.max_rows)
        index = self.count
        self.count += 1
        clean, rejected = validate_row(
            index, row, partner=self.partner, now=self.now, memo=self.memo
        )
        if rejected is not None:
            self.results.append(rejected)
        elif clean.external_id in self.index_of:
            self.results.append(
                RowResult(
                    index,
                    clean.external_id,
                    errors=[{"field": "external_id", "message": "appears twice in this batch"}],
                )
            )
        else:
            self.index_of[clean.external_id] = index
            kind = KINDS[clean.kind]
            parsed = clean.identifier
            key = (parsed.kind, parsed.namespace, parsed.sha256)
            entry = self.identifiers.get(key)
            if entry is None:
                entry = self.identifiers[key] = [len(self.identifiers), parsed, set()]
            entry[2].add(kind.category)
            self.pending.append(
                (
                    entry[0],
                    clean.external_id,
                    clean.kind,
                    kind.purpose,
                    kind.category,
                    clean.gtin,
                    clean.serial,
                    clean.occurred_at,
                    orjson.dumps(clean.payload).decode(),
                    clean.content_hash,
                )
            )
            if len(self.pending) >= CHUNK:
                self.flush()

    def reject(self, message, field=None):
        """A row that could not even be parsed (a bad NDJSON line) still takes an index."""
        if self.count >= self.max_rows:
            raise BatchTooLarge(self.max_rows)
        self.results.append(
            RowResult(self.count, None, errors=[{"field": field, "message": message}])
        )
        self.count += 1

    def flush(self):
        """Stage the valid rows read so far."""
        rows, self.pending = self.pending, []
        if not rows:
            return
        with connection.cursor() as cursor:
            if not self.staged:
                stage_create(cursor, "ingest_record", STAGED)
                self.staged = True
            stage_copy(cursor, "ingest_record", STAGED, rows)

    def finish(self):
        if self.staged:
            self.flush()
        if self.index_of:
            self.results.extend(self._store())
        self.results.sort(key=lambda r: r.index)
        return self.results

    def _store(self):
        """Resolve the batch's customers, insert its records, say what became of each."""
        entries = list(self.identifiers.values())
        customer_ids = identities_resolve(
            identifiers=[parsed for _, parsed, _ in entries], partner=self.partner
        )
        categories_of = defaultdict(set)
        for (_, _, categories), customer_id in zip(entries, customer_ids, strict=True):
            categories_of[customer_id] |= categories
        customer_sources_touch(partner=self.partner, categories_of=categories_of)
        with connection.cursor() as cursor:
            if self.staged:
                records, record_params = "ingest_record", []
            else:  # a small batch, all still in memory
                records, record_params = row_source(cursor, "ingest_record", STAGED, self.pending)
            customers, customer_params = row_source(
                cursor, "ingest_customer", ("n int", "customer_id uuid"), enumerate(customer_ids)
            )
            # In external id order: two batches of one partner that share external ids wait
            # for each other in one order.
            cursor.execute(
                f"""
                INSERT INTO records_interactionrecord
                    (ref, submitted_by_id, external_id, kind, purpose, category, customer_id,
                     gtin, serial, occurred_at, payload, content_hash, received_at)
                SELECT gen_random_uuid(), %s, ingest_record.external_id, ingest_record.kind,
                       ingest_record.purpose, ingest_record.category, ingest_customer.customer_id,
                       ingest_record.gtin, ingest_record.serial, ingest_record.occurred_at,
                       ingest_record.payload, ingest_record.content_hash, now()
                FROM {records} JOIN {customers} USING (n)
                ORDER BY ingest_record.external_id
                ON CONFLICT (submitted_by_id, external_id) DO NOTHING
                RETURNING external_id, ref::text
                """,  # noqa: S608 (FROM items from row_source, values as parameters)
                [self.partner.pk, *record_params, *customer_params],
            )
            created = dict(cursor.fetchall())
            existing = {}
            if len(created) < len(self.index_of):
                cursor.execute(
                    f"""SELECT r.external_id, r.ref::text,
                               r.content_hash = ingest_record.content_hash,
                               r.tombstoned_at IS NOT NULL
                        FROM {records} JOIN records_interactionrecord r
                          ON r.submitted_by_id = %s
                         AND r.external_id = ingest_record.external_id""",  # noqa: S608 (as above)
                    [*record_params, self.partner.pk],
                )
                existing = {e: rest for e, *rest in cursor.fetchall() if e not in created}
        results = []
        for external_id, index in self.index_of.items():
            if external_id in created:
                results.append(RowResult(index, external_id, "created", created[external_id]))
                continue
            ref, same_content, gone = existing[external_id]
            if gone:
                message = "names a record whose customer was erased"
            elif same_content:
                results.append(RowResult(index, external_id, "existing", ref))
                continue
            else:
                message = "is already used by a record with different content"
            results.append(
                RowResult(index, external_id, errors=[{"field": "external_id", "message": message}])
            )
        return results


# The staging table of valid rows; ``n`` numbers the row's identifier within the batch.
STAGED = (
    "n int",
    "external_id text",
    "kind text",
    "purpose text",
    "category text",
    "gtin text",
    "serial text",
    "occurred_at timestamptz",
    "payload jsonb",
    "content_hash text",
)
