"""Partitions ahead and retention by whole partitions; roll-ups from the raw readings."""

from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from telemetry import partitions, tasks
from telemetry.models import DailyRollup, HourlyRollup, Reading, TelemetrySettings

from .conftest import ingest, reading, register


def test_maintenance_creates_this_month_and_two_ahead_idempotently(db):
    now = datetime(2026, 11, 20, tzinfo=UTC)
    first = partitions.partitions_maintain(now=now)
    assert {"telemetry_reading_y2026m11", "telemetry_reading_y2026m12"} <= set(first["created"])
    assert "telemetry_reading_y2027m01" in first["created"]
    assert partitions.partitions_maintain(now=now)["created"] == []
    call_command("telemetry_partitions", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_retention_drops_a_whole_partition_and_keeps_recent_ones(fleet):
    (_device,) = register(fleet.maker, "A-1")
    old = timezone.now() - timedelta(days=300)
    ingest(
        fleet.maker,
        [reading("A-1", "power_w", 1, old), reading("A-1", "power_w", 2, timezone.now())],
    )
    old_name = partitions.partition_name(partitions.month_start(old))
    assert old_name in partitions.existing_partitions().values()
    TelemetrySettings.objects.create(partner=fleet.maker, retention_days=60)
    # The longest retention (the default, 365 days) keeps the shared partition: the maker's
    # shorter one deletes its own old rows from it.
    result = partitions.partitions_maintain()
    assert old_name not in result["dropped"] and result["deleted"] == 1
    assert list(Reading.objects.values_list("value", flat=True)) == [2.0]
    # When every retention is shorter than its age, the partition goes whole.
    with override_default(30):
        TelemetrySettings.objects.filter(partner=fleet.maker).update(retention_days=31)
        result = partitions.partitions_maintain()
    assert old_name in result["dropped"]
    assert old_name not in partitions.existing_partitions().values()


def override_default(days):
    from django.test import override_settings

    return override_settings(TELEMETRY_RETENTION_DAYS=days)


def test_readings_older_than_retention_are_rejected(fleet):
    register(fleet.maker, "A-1")
    summary = ingest(
        fleet.maker, [reading("A-1", "power_w", 1, timezone.now() - timedelta(days=400))]
    )
    assert summary["rejected"] == 1 and summary["errors"][0]["field"] == "ts"


def test_rollups_are_recomputed_from_the_readings(fleet, django_capture_on_commit_callbacks):
    register(fleet.maker, "A-1")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    rows = [
        reading("A-1", "power_w", v, hour + timedelta(minutes=m))
        for v, m in ((10, 1), (20, 2), (60, 30))
    ]
    with django_capture_on_commit_callbacks(execute=True):
        ingest(fleet.maker, rows)
    hourly = HourlyRollup.objects.get(metric="power_w")
    assert (hourly.count, hourly.min, hourly.max, hourly.avg, hourly.sum) == (3, 10, 60, 30, 90)
    assert hourly.bucket == hour
    later = [reading("A-1", "power_w", 30, hour + timedelta(minutes=40))]
    with django_capture_on_commit_callbacks(execute=True):
        ingest(fleet.maker, later)
    hourly.refresh_from_db()
    assert (hourly.count, hourly.sum) == (4, 120)
    daily = DailyRollup.objects.get(metric="power_w", bucket=hour.replace(hour=0))
    assert daily.count >= 4
    # Running the task again changes nothing.
    tasks.refresh_rollups([hourly.device_id], hour.isoformat(), hour.isoformat())
    hourly.refresh_from_db()
    assert (hourly.count, hourly.sum) == (4, 120)


def test_partitioned_table_has_a_brin_per_partition(fleet):
    register(fleet.maker, "A-1")
    ingest(fleet.maker, [reading("A-1", "power_w", 1, timezone.now())])
    name = partitions.partition_name(partitions.month_start(timezone.now()))
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [name])
        defs = " ".join(r[0] for r in cursor.fetchall())
    assert "brin" in defs.lower() and "UNIQUE" in defs
