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
from datetime import UTC, datetime, timedelta

import orjson
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from consent import identity
from consent.services import customers_resolve
from partners.record_kinds import KINDS

from .gtin import normalise_gtin

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,99}$")
SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
FUTURE_TOLERANCE = timedelta(days=1)
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


def _parse_time(value):
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time with a time zone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time with a time zone") from None
    if moment.tzinfo is None:
        raise ValueError("needs a time zone (e.g. Z or +01:00)")
    return moment.astimezone(UTC)


def validate_row(index, row, *, partner, now):
    """(CleanRow, None) or (None, RowResult with errors). Never raises for bad input."""
    if not isinstance(row, dict):
        return None, RowResult(
            index, None, errors=[{"field": None, "message": "each record must be a JSON object"}]
        )
    errors = []

    def err(name, message):
        errors.append({"field": name, "message": message})

    external_id = row.get("external_id")
    if not isinstance(external_id, str) or not EXTERNAL_ID.match(external_id):
        err(
            "external_id",
            "is required: 1-100 letters, digits or . _ : / # -, starting with a letter or digit",
        )
        external_id = (
            external_id if isinstance(external_id, str) and len(external_id) <= 100 else None
        )
    unknown = set(row) - {"external_id", "kind", "occurred_at", "customer", "product", "payload"}
    for name in sorted(unknown):
        err(name, "is not a field of a record")
    kind = KINDS.get(row.get("kind")) if isinstance(row.get("kind"), str) else None
    if kind is None:
        err("kind", f"must be one of {', '.join(KINDS)}")
    occurred_at = None
    try:
        occurred_at = _parse_time(row.get("occurred_at"))
        if occurred_at > now + FUTURE_TOLERANCE:
            err("occurred_at", "is in the future")
    except ValueError as exc:
        err("occurred_at", str(exc))
    parsed = None
    customer = row.get("customer")
    if not isinstance(customer, dict):
        err("customer", 'is required: {"kind": "email"|"phone"|"loyalty", "value" or "sha256"}')
    else:
        extra = set(customer) - {"kind", "value", "sha256"}
        if extra:
            err("customer", f"unknown keys {', '.join(sorted(extra))}")
        else:
            try:
                parsed = identity.parse_identifier(
                    kind=customer.get("kind"),
                    value=customer.get("value"),
                    sha256=customer.get("sha256"),
                    programme_id=partner.pk,
                )
            except ValidationError as exc:
                err("customer", " ".join(exc.messages))
    gtin = serial = ""
    product = row.get("product")
    if kind is not None:
        if product is None:
            if kind.unit == "required":
                err("product", f'is required for {kind.key}: {{"gtin": …, "serial": …}}')
        elif kind.unit == "none":
            err("product", f"is not allowed for {kind.key}")
        elif not isinstance(product, dict) or set(product) - {"gtin", "serial"}:
            err("product", 'must be {"gtin": …, "serial": …}')
        else:
            try:
                gtin = normalise_gtin(product.get("gtin"))
            except ValueError as exc:
                err("product.gtin", str(exc))
            serial = product.get("serial")
            if not isinstance(serial, str) or not SERIAL.match(serial):
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
    """Feed rows with ``add``; ``finish`` flushes and returns the row results in order.
    Must run inside a transaction: nothing is visible until the caller commits."""

    def __init__(self, *, partner, max_rows):
        self.partner = partner
        self.max_rows = max_rows
        self.now = timezone.now()
        self.results = []
        self.pending = []
        self.seen = set()
        self.count = 0

    def add(self, row):
        if self.count >= self.max_rows:
            raise BatchTooLarge(self.max_rows)
        index = self.count
        self.count += 1
        clean, rejected = validate_row(index, row, partner=self.partner, now=self.now)
        if rejected is not None:
            self.results.append(rejected)
        elif clean.external_id in self.seen:
            self.results.append(
                RowResult(
                    index,
                    clean.external_id,
                    errors=[{"field": "external_id", "message": "appears twice in this batch"}],
                )
            )
        else:
            self.seen.add(clean.external_id)
            self.pending.append(clean)
            if len(self.pending) >= CHUNK:
                self.flush()

    def reject(self, message):
        """A row that could not even be parsed (a bad NDJSON line) still takes an index."""
        if self.count >= self.max_rows:
            raise BatchTooLarge(self.max_rows)
        self.results.append(
            RowResult(self.count, None, errors=[{"field": None, "message": message}])
        )
        self.count += 1

    def flush(self):
        rows, self.pending = self.pending, []
        if rows:
            self.results.extend(_store(rows, self.partner))

    def finish(self):
        self.flush()
        self.results.sort(key=lambda r: r.index)
        return self.results


def _store(rows, partner):
    by_category = defaultdict(list)
    for row in rows:
        by_category[KINDS[row.kind].category].append(row)
    customer_of = {}
    for category, group in by_category.items():
        ids = customers_resolve(
            identifiers=[r.identifier for r in group], partner=partner, categories=[category]
        )
        for row, customer_id in zip(group, ids, strict=True):
            customer_of[row.index] = customer_id
    kinds = [KINDS[r.kind] for r in rows]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO records_interactionrecord
                (ref, submitted_by_id, external_id, kind, purpose, category, customer_id, gtin, serial,
                 occurred_at, payload, content_hash, received_at)
            SELECT gen_random_uuid(), %s, e, k, p, c, cu, g, s, o, pl::jsonb, h, now()
            FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::uuid[], %s::text[],
                        %s::text[], %s::timestamptz[], %s::text[], %s::text[])
                 AS t(e, k, p, c, cu, g, s, o, pl, h)
            ON CONFLICT (submitted_by_id, external_id) DO NOTHING
            RETURNING external_id, ref
            """,
            [
                partner.pk,
                [r.external_id for r in rows],
                [r.kind for r in rows],
                [k.purpose for k in kinds],
                [k.category for k in kinds],
                [customer_of[r.index] for r in rows],
                [r.gtin for r in rows],
                [r.serial for r in rows],
                [r.occurred_at for r in rows],
                [orjson.dumps(r.payload).decode() for r in rows],
                [r.content_hash for r in rows],
            ],
        )
        created = dict(cursor.fetchall())
        conflicts = [r.external_id for r in rows if r.external_id not in created]
        existing = {}
        if conflicts:
            cursor.execute(
                """SELECT external_id, ref, content_hash, tombstoned_at IS NOT NULL
                   FROM records_interactionrecord WHERE submitted_by_id = %s AND external_id = ANY(%s)""",
                [partner.pk, conflicts],
            )
            existing = {e: (ref, h, gone) for e, ref, h, gone in cursor.fetchall()}
    results = []
    for row in rows:
        if row.external_id in created:
            results.append(
                RowResult(row.index, row.external_id, "created", str(created[row.external_id]))
            )
            continue
        ref, content_hash, gone = existing[row.external_id]
        if gone:
            results.append(
                RowResult(
                    row.index,
                    row.external_id,
                    errors=[
                        {
                            "field": "external_id",
                            "message": "names a record whose customer was erased",
                        }
                    ],
                )
            )
        elif content_hash == row.content_hash:
            results.append(RowResult(row.index, row.external_id, "existing", str(ref)))
        else:
            results.append(
                RowResult(
                    row.index,
                    row.external_id,
                    errors=[
                        {
                            "field": "external_id",
                            "message": "is already used by a record with different content",
                        }
                    ],
                )
            )
    return results
