"""Partitions ahead and retention by whole partitions; roll-ups from the raw readings."""

from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Max, Min, Sum
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
        TelemetrySettings.objects.unscoped("test setup").filter(partner=fleet.maker).update(
            retention_days=31
        )
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
    day = (timezone.now() - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    hour = day + timedelta(hours=5)
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
    # Another hour of the same day: the day sums both hours.
    with django_capture_on_commit_callbacks(execute=True):
        ingest(fleet.maker, [reading("A-1", "power_w", 5, day + timedelta(hours=7))])
    daily = DailyRollup.objects.get(metric="power_w", bucket=day)
    expected = Reading.objects.filter(
        metric="power_w", ts__gte=day, ts__lt=day + timedelta(days=1)
    ).aggregate(n=Count("ts"), low=Min("value"), high=Max("value"), total=Sum("value"))
    assert (daily.count, daily.min, daily.max, daily.sum) == tuple(expected.values())
    assert (daily.count, daily.sum) == (5, 125) and daily.avg == 25
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


def _hold_rollup_lock(manufacturer_id):
    """Another session holding the manufacturer's roll-up lock, as a running refresher would."""
    import psycopg

    conf = connection.settings_dict
    other = psycopg.connect(
        host=conf["HOST"],
        port=conf["PORT"],
        user=conf["USER"],
        dbname=conf["NAME"],
        password=conf["PASSWORD"] or None,
        autocommit=True,
    )
    other.execute(
        "SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"telemetry:rollups:{manufacturer_id}"]
    )
    return other


def test_batches_waiting_for_a_refresher_share_one_rollup_refresh(fleet):
    from telemetry import services
    from telemetry.models import PendingBatch

    register(fleet.maker, "A-1")
    hour = (timezone.now() - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    # on_commit does not run inside the test transaction: both outbox rows wait.
    ingest(fleet.maker, [reading("A-1", "power_w", 10, hour + timedelta(minutes=5))])
    ingest(fleet.maker, [reading("A-1", "power_w", 30, hour + timedelta(minutes=6))])
    first, second = PendingBatch.objects.unscoped("test setup").order_by("pk")
    other = _hold_rollup_lock(fleet.maker.pk)
    try:
        services.pending_batch_process(batch_id=first.pk)
    finally:
        other.close()
    # Its rules ran; its roll-ups wait for the next refresher, the row with them.
    first.refresh_from_db()
    assert first.rules_done and not HourlyRollup.objects.exists()
    services.pending_batch_process(batch_id=second.pk)
    hourly = HourlyRollup.objects.get(metric="power_w", bucket=hour)
    assert (hourly.count, hourly.sum) == (2, 40)
    assert not PendingBatch.objects.unscoped("test setup").exists()
    assert services.pending_batch_process(batch_id=first.pk) is None


def test_hour_spans_merge_touching_spans_and_keep_apart_distant_ones():
    from telemetry.services import _hour_spans

    t = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    m = timedelta(minutes=1)
    spans = _hour_spans(
        [
            (1, [1], t + 5 * m, t + 50 * m),
            (2, [2], t + 70 * m, t + 80 * m),  # the next hour: touches the first span
            (3, [3], t + 600 * m, t + 601 * m),  # hours later: a span of its own
            (4, [1], t + 55 * m, t + 58 * m),
        ]
    )
    assert spans == [
        [t, t + timedelta(hours=1), {1, 2}],
        [t + timedelta(hours=10), t + timedelta(hours=10), {3}],
    ]
