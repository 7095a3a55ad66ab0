"""Monthly partitions of ``telemetry_reading``: create them ahead, drop whole old ones.

Partitions are shared by all manufacturers, so a partition is dropped only when it is older than
the longest retention any manufacturer has (``TelemetrySettings.retention_days``, else
``settings.TELEMETRY_RETENTION_DAYS``); a manufacturer with a shorter retention has its older rows
deleted from the partitions that remain. Dropping a partition is instant and leaves no bloat.
"""

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from .models import TelemetrySettings

NAME = re.compile(r"^telemetry_reading_y(\d{4})m(\d{2})$")


def month_start(moment):
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start):
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start):
    return f"telemetry_reading_y{start.year:04d}m{start.month:02d}"


def existing_partitions():
    """{month start: table name} of the partitions that exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'telemetry_reading'::regclass"""
        )
        out = {}
        for (name,) in cursor.fetchall():
            m = NAME.match(name)
            if m:
                out[datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC)] = name
        return out


def ensure_partitions(months):
    """Create the partitions for these month starts that are missing (idempotent). Must run in
    a transaction. Creating a partition locks the parent table until commit, so the beat creates
    them ahead and an ingest only does it for a month nobody has written yet (a back-fill)."""
    missing = set(months) - set(existing_partitions())
    if not missing:
        return []
    with connection.cursor() as cursor:  # racing creators wait here, then see the new table
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('telemetry:parts', 0))")
    created = []
    for start in sorted(set(months) - set(existing_partitions())):
        name = partition_name(start)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF telemetry_reading "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, next_month(start)],
            )
        created.append(name)
    return created


def longest_retention_days():
    default = settings.TELEMETRY_RETENTION_DAYS
    every = TelemetrySettings.objects.unscoped("shared partitions outlive every maker's longest")
    longest = every.aggregate(m=Max("retention_days"))["m"]
    return max(default, longest or 0)


def retention_days_for(partner):
    row = TelemetrySettings.objects.for_partner(partner).first()
    return row.retention_days if row else settings.TELEMETRY_RETENTION_DAYS


def partitions_maintain(*, now=None, ahead=2):
    """Create this month's partition and ``ahead`` more; drop partitions wholly older than the
    longest retention; delete rows older than shorter per-manufacturer retentions. Returns
    {"created": [...], "dropped": [...], "deleted": n}."""
    now = now or timezone.now()
    start = month_start(now)
    months = [start]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    with transaction.atomic():
        with connection.cursor() as cursor:  # one maintainer (or creating ingest) at a time
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('telemetry:parts', 0))")
        created = ensure_partitions(months)
        cutoff = now - timedelta(days=longest_retention_days())
        dropped = []
        for month, name in sorted(existing_partitions().items()):
            if next_month(month) <= cutoff:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE {name}")
                dropped.append(name)
        deleted = 0
        shorter = TelemetrySettings.objects.unscoped("retention runs for every maker").filter(
            retention_days__lt=longest_retention_days()
        )
        for row in shorter:
            with connection.cursor() as cursor:
                cursor.execute(
                    """DELETE FROM telemetry_reading r USING telemetry_device d
                       WHERE d.id = r.device_id AND d.manufacturer_id = %s AND r.ts < %s""",
                    [row.partner_id, now - timedelta(days=row.retention_days)],
                )
                deleted += cursor.rowcount
    return {"created": created, "dropped": dropped, "deleted": deleted}
