"""Bulk ingest of readings: validate each row, write the good ones with COPY into a temporary
table and ``INSERT … SELECT … ON CONFLICT DO NOTHING`` into the partitioned table, so a replayed
batch creates nothing twice. Rows are handled in chunks: memory is bounded by the chunk, not
the batch."""

import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from clearinghouse.records.ingest import _parse_time

from .catalogue import METRICS
from .models import Device
from .partitions import ensure_partitions, month_start, retention_days_for

FUTURE_TOLERANCE = timedelta(minutes=5)
CHUNK = 5000
MAX_ERRORS = 100
FIELDS = {"device", "ts", "metric", "value"}


class BatchTooLarge(Exception):
    pass


@dataclass
class ReadingBatch:
    """Feed rows with ``add``; ``finish`` flushes and returns the summary. Runs inside the
    caller's transaction."""

    partner: object
    max_rows: int
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    count: int = 0
    errors: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    device_ids: set = field(default_factory=set)
    first_ts: object = None
    last_ts: object = None

    def __post_init__(self):
        self.now = timezone.now()
        self.oldest = self.now - timedelta(days=retention_days_for(self.partner))
        self.known_months = set()
        self.last_seen = {}  # device id -> newest reading time in this batch

    def _reject(self, index, name, message):
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"index": index, "field": name, "message": message})

    def reject(self, message):
        """A row that could not be parsed (a bad NDJSON line) still takes an index."""
        self._count()
        self._reject(self.count - 1, None, message)

    def _count(self):
        if self.count >= self.max_rows:
            raise BatchTooLarge(self.max_rows)
        self.count += 1

    def add(self, row):
        self._count()
        index = self.count - 1
        if not isinstance(row, dict):
            return self._reject(index, None, "each reading must be a JSON object")
        extra = set(row) - FIELDS
        if extra:
            return self._reject(index, sorted(extra)[0], "is not a field of a reading")
        serial = row.get("device")
        if not isinstance(serial, str) or not serial or len(serial) > 64:
            return self._reject(index, "device", "is required: the device's serial number")
        metric = row.get("metric")
        if metric not in METRICS:
            return self._reject(index, "metric", f"must be one of {', '.join(METRICS)}")
        try:
            ts = _parse_time(row.get("ts"))
        except ValueError as exc:
            return self._reject(index, "ts", str(exc))
        if ts > self.now + FUTURE_TOLERANCE:
            return self._reject(index, "ts", "is more than 5 minutes in the future")
        if ts < self.oldest:
            return self._reject(index, "ts", "is older than your telemetry retention")
        value = row.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self._reject(index, "value", "must be a number")
        if not math.isfinite(value):
            return self._reject(index, "value", "must be a finite number")
        self.pending.append((index, serial, metric, ts, float(value)))
        if len(self.pending) >= CHUNK:
            self.flush()

    def flush(self):
        rows, self.pending = self.pending, []
        if not rows:
            return
        devices = dict(
            Device.objects.for_partner(self.partner)
            .filter(serial__in={r[1] for r in rows})
            .values_list("serial", "id")
        )
        good = []
        for index, serial, metric, ts, value in rows:
            device_id = devices.get(serial)
            if device_id is None:
                # Another manufacturer's device reads exactly like an unknown one.
                self._reject(index, "device", "is not a device you registered")
                continue
            good.append((device_id, metric, ts, value))
        if good:
            self._store(good)

    def _store(self, rows):
        months = {month_start(r[2]) for r in rows} - self.known_months
        if months:
            ensure_partitions(months)
            self.known_months |= months
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
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                """INSERT INTO telemetry_reading (device_id, metric, ts, value)
                   SELECT device_id, metric, ts, value FROM telemetry_incoming
                   ON CONFLICT (device_id, metric, ts) DO NOTHING"""
            )
            inserted = cursor.rowcount
        for device_id, _, ts, _ in rows:
            seen = self.last_seen.get(device_id)
            if seen is None or ts > seen:
                self.last_seen[device_id] = ts
        self.accepted += inserted
        self.duplicates += len(rows) - inserted
        self.device_ids.update(r[0] for r in rows)
        lo, hi = min(r[2] for r in rows), max(r[2] for r in rows)
        self.first_ts = lo if self.first_ts is None else min(lo, self.first_ts)
        self.last_ts = hi if self.last_ts is None else max(hi, self.last_ts)

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

    def finish(self):
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
