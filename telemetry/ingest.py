"""Bulk ingest of readings: validate each row, write the good ones with COPY, so that a replayed
batch creates nothing twice. Rows are handled in chunks: memory is bounded by the chunk, not the
batch.

The per-row work is the cost that matters at 100,000 readings a second, so a row that is plainly
valid takes a fast path (type checks, a cached verdict per distinct timestamp string) and only a
row that fails one of them goes through the full checks, which give the reason. Rows become
COPY text directly; PostgreSQL parses the timestamps.

A chunk is COPY'd straight into the partitioned table inside a savepoint. A unique violation (a
replayed or overlapping batch, or a reading repeated within the batch) rolls the savepoint back
and the chunk goes the slower, duplicate-proof way: COPY into a temporary table, then
``INSERT … SELECT … ON CONFLICT DO NOTHING``. The rest of that batch goes that way too: a batch
that repeats one chunk usually repeats all of them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from django.db import connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from clearinghouse.common.api.bodies import BadRow, parse_moment
from partners.models import Partner

from .catalogue import METRICS
from .models import Device
from .partitions import ensure_partitions, retention_days_for

FUTURE_TOLERANCE = timedelta(minutes=5)
CHUNK = 10000
MAX_ERRORS = 100
FIELDS = {"device", "ts", "metric", "value"}
# Integers that PostgreSQL's float8 input turns into the same double as Python's float().
LARGEST_INT = 2**63


class BatchTooLarge(Exception):
    pass


class RowError(TypedDict):
    """Why one row of a batch was refused (``field`` is None for the row as a whole)."""

    index: int
    field: str | None
    message: str


class ReadingsSummary(TypedDict):
    """What an ingest of readings answers: counts, and the first ``MAX_ERRORS`` refusals."""

    accepted: int
    duplicates: int
    rejected: int
    errors: list[RowError]
    errors_truncated: bool


@dataclass
class ReadingBatch:
    """Feed rows with ``feed``; ``finish`` flushes and returns the summary. Runs inside the
    caller's transaction.

    Timestamps are kept as canonical UTC ISO text (``datetime.isoformat`` of the UTC moment):
    fixed-width fields, so comparing the strings compares the moments."""

    partner: Partner
    max_rows: int
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    count: int = 0
    errors: list[RowError] = field(default_factory=list)
    # (index, serial, metric, canonical UTC time, value) of rows waiting for the next COPY
    pending: list[tuple[int, str, str, str, float]] = field(default_factory=list)
    first_ts: str | None = None
    last_ts: str | None = None

    def __post_init__(self) -> None:
        self.now = timezone.now()
        self.oldest = self.now - timedelta(days=retention_days_for(self.partner))
        self.known_months: set[tuple[int, int]] = set()
        # device id -> newest reading time (text) in this batch
        self.last_seen: dict[int, str] = {}
        # serial -> device id, or None when not the partner's device
        self.devices: dict[str, int | None] = {}
        # timestamp as sent -> canonical text, or (message,) when rejected
        self.times: dict[str, str | tuple[str]] = {}
        self.direct = True  # COPY straight into the table until a chunk meets a duplicate

    @property
    def device_ids(self) -> set[int]:
        return set(self.last_seen)

    def _reject(self, index, name, message):
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"index": index, "field": name, "message": message})

    def feed(self, rows: Iterable[object]) -> None:
        """Take reading dicts, or a ``BadRow`` for a row that could not be parsed (a bad NDJSON
        line): it is rejected but still takes an index."""
        metrics, times, pending = METRICS, self.times, self.pending
        for row in rows:
            index = self.count
            if index >= self.max_rows:
                raise BatchTooLarge(self.max_rows)
            self.count = index + 1
            # The fast path: exactly the four fields (a four-key dict holding all of them has
            # no other), each of the expected type and plainly valid.
            if (
                type(row) is dict
                and len(row) == 4
                and type(serial := row.get("device")) is str
                and 0 < len(serial) <= 64
                and type(metric := row.get("metric")) is str
                and metric in metrics
                and type(ts := row.get("ts")) is str
                and type(text := times.get(ts) or self._time(ts)) is str
                and (
                    (type(value := row.get("value")) is float and value - value == 0.0)
                    or (type(value) is int and -LARGEST_INT < value < LARGEST_INT)
                )
            ):
                pending.append((index, serial, metric, text, value))
                if len(pending) >= CHUNK:
                    self.flush()
            elif type(row) is BadRow:
                self._reject(index, row.field, row.message)
            else:
                self._check(index, row)

    def _check(self, index, row):
        """The full checks, in order; the first that fails gives the row's rejection reason."""
        if not isinstance(row, dict):
            return self._reject(index, None, "each reading must be a JSON object")
        extra = set(row) - FIELDS
        if extra:
            return self._reject(index, sorted(extra)[0], "is not a field of a reading")
        serial = row.get("device")
        if not isinstance(serial, str) or not serial or len(serial) > 64:
            return self._reject(index, "device", "is required: the device's serial number")
        metric = row.get("metric")
        if not isinstance(metric, str) or metric not in METRICS:
            return self._reject(index, "metric", f"must be one of {', '.join(METRICS)}")
        text = self._time(row.get("ts"))
        if type(text) is tuple:
            return self._reject(index, "ts", text[0])
        value = row.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self._reject(index, "value", "must be a number")
        try:
            value = float(value)
        except OverflowError:
            return self._reject(index, "value", "must be a finite number")
        if not math.isfinite(value):
            return self._reject(index, "value", "must be a finite number")
        self.pending.append((index, serial, metric, text, value))
        if len(self.pending) >= CHUNK:
            self.flush()

    def _time(self, value):
        """Canonical UTC text of a timestamp, or (reason,); remembered per distinct string."""
        cacheable = type(value) is str
        if cacheable and value in self.times:
            return self.times[value]
        try:
            moment = parse_moment(value)
        except ValueError as exc:
            verdict = (str(exc),)
        else:
            if moment > self.now + FUTURE_TOLERANCE:
                verdict = ("is more than 5 minutes in the future",)
            elif moment < self.oldest:
                verdict = ("is older than your telemetry retention",)
            else:
                verdict = moment.isoformat()
        if cacheable:
            self.times[value] = verdict
        return verdict

    def _resolve(self, serials):
        """Learn the device ids of serials not seen before in this batch."""
        missing = serials.difference(self.devices)
        if not missing:
            return
        # A serial with a NUL character names no device (PostgreSQL cannot even compare it).
        found = dict(
            Device.objects.for_partner(self.partner)
            .filter(serial__in=[s for s in missing if "\x00" not in s])
            .values_list("serial", "id")
        )
        for serial in missing:
            self.devices[serial] = found.get(serial)

    def flush(self) -> None:
        rows = self.pending.copy()  # cleared in place: ``feed`` holds on to the list
        self.pending.clear()
        if not rows:
            return
        self._resolve({r[1] for r in rows})
        devices, last_seen = self.devices, self.last_seen
        lines, stamps = [], set()
        for index, serial, metric, text, value in rows:
            device = devices[serial]
            if device is None:
                # Another manufacturer's device reads exactly like an unknown one.
                self._reject(index, "device", "is not a device you registered")
                continue
            lines.append(f"{device}\t{metric}\t{text}\t{value!r}\n")
            stamps.add(text)
            if text > last_seen.get(device, ""):
                last_seen[device] = text
        if lines:
            self._store("".join(lines).encode(), len(lines), stamps)

    def _store(self, data, count, stamps):
        months = {(int(s[:4]), int(s[5:7])) for s in stamps} - self.known_months
        if months:
            ensure_partitions({datetime(y, m, 1, tzinfo=UTC) for y, m in months})
            self.known_months |= months
        inserted = self._copy_direct(data, count) if self.direct else None
        if inserted is None:
            inserted = self._copy_dedup(data)
        self.accepted += inserted
        self.duplicates += count - inserted
        lo, hi = min(stamps), max(stamps)
        self.first_ts = lo if self.first_ts is None else min(lo, self.first_ts)
        self.last_ts = hi if self.last_ts is None else max(hi, self.last_ts)

    def _copy_direct(self, data, count):
        """COPY into the table; ``None`` (and nothing written) when a row is already there."""
        try:
            with (
                transaction.atomic(),
                connection.cursor() as cursor,
                cursor.cursor.copy(
                    "COPY telemetry_reading (device_id, metric, ts, value) FROM STDIN"
                ) as copy,
            ):
                copy.write(data)
        except UniqueViolation:
            self.direct = False
            return None
        return count

    def _copy_dedup(self, data):
        with connection.cursor() as cursor:
            cursor.execute(
                """CREATE TEMP TABLE IF NOT EXISTS telemetry_incoming
                   (device_id bigint, metric text, ts timestamptz, value double precision)
                   ON COMMIT DROP"""
            )
            cursor.execute("TRUNCATE telemetry_incoming")
            with cursor.cursor.copy(
                "COPY telemetry_incoming (device_id, metric, ts, value) FROM STDIN"
            ) as copy:
                copy.write(data)
            cursor.execute(
                """INSERT INTO telemetry_reading (device_id, metric, ts, value)
                   SELECT device_id, metric, ts, value FROM telemetry_incoming
                   ON CONFLICT (device_id, metric, ts) DO NOTHING"""
            )
            return cursor.rowcount

    def _touch_devices(self):
        """last_seen_at once per batch, locking the device rows in id order: two batches for
        the same devices then wait for each other instead of deadlocking."""
        if not self.last_seen:
            return
        ids = sorted(self.last_seen)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM telemetry_device WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids]
            )
            cursor.execute(
                """UPDATE telemetry_device d SET last_seen_at = GREATEST(d.last_seen_at, i.ts)
                   FROM unnest(%s::bigint[], %s::timestamptz[]) AS i(device_id, ts)
                   WHERE d.id = i.device_id""",
                [ids, [self.last_seen[i] for i in ids]],
            )

    def finish(self) -> ReadingsSummary:
        self.flush()
        self._touch_devices()
        self.errors.sort(key=lambda e: e["index"])
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
            "errors_truncated": self.rejected > len(self.errors),
        }
