"""Real worker processes: a run killed with SIGKILL mid-way is redone by another worker with the
same result as an uninterrupted run, and replayed tasks change nothing."""

import os
import signal
from contextlib import contextmanager

import pytest
from django.db import connection
from django.utils import timezone

from clearinghouse.reconciliation.engine import reconcile_pair
from clearinghouse.reconciliation.models import (
    Discrepancy,
    DiscrepancyEvidence,
    PairState,
    ReconciliationRun,
    RecordLink,
)
from clearinghouse.reconciliation.tasks import reconcile_pair_task
from clearinghouse.records.services import records_ingest
from consent import identity
from consent import services as consent_services
from tests.records.conftest import registration, sale
from tests.support.processes import celery_worker, real_broker
from tests.support.waiting import DatabaseActivity, wait_for, worker_progress

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
CUSTOMERS = 200
UNITS = 24000


def _load(pair):
    now = timezone.now()
    day = lambda n: (now - timezone.timedelta(days=n)).isoformat()  # noqa: E731
    email = lambda i: f"c{i % CUSTOMERS}@example.org"  # noqa: E731
    sales = [
        sale(f"S-{i}", email=email(i), serial=f"U{i}", occurred_at=day(40 + i % 300))
        for i in range(UNITS)
    ]
    regs = [
        registration(
            f"W-{i}",
            email=email(i),
            serial=f"U{i}",
            occurred_at=day(39 + i % 300 - (30 if i % 11 == 0 else 0)),
            payload={"warranty_months": 24},
        )
        for i in range(UNITS)
        if i % 7
    ]
    for start in range(0, UNITS, 8000):
        records_ingest(partner=pair.shop, rows=sales[start : start + 8000], max_rows=10000)
    for start in range(0, len(regs), 8000):
        records_ingest(partner=pair.maker, rows=regs[start : start + 8000], max_rows=10000)
    for i in range(CUSTOMERS):
        customer = consent_services.customer_resolve(
            identifier=identity.parse_identifier(kind="email", value=f"c{i}@example.org"),
            partner=pair.shop,
        )
        for partner in (pair.maker, pair.shop):
            consent_services.consent_grant(
                customer=customer, grantee=partner, purpose="warranty", source="customer"
            )


def _snapshot():
    return (
        sorted(Discrepancy.objects.unscoped("test setup").values_list("key", "status")),
        sorted(RecordLink.objects.values_list("kind", "from_record_id", "to_record_id")),
        DiscrepancyEvidence.objects.count(),
    )


def _reset():
    Discrepancy.objects.unscoped("test setup").all().delete()
    RecordLink.objects.all().delete()
    PairState.objects.all().delete()
    ReconciliationRun.objects.unscoped("test setup").all().delete()


@pytest.fixture
def loaded(pair):
    _load(pair)
    reference = reconcile_pair(
        manufacturer=pair.maker, retailer=pair.shop, trigger="reference", full=True
    )
    assert reference.status == "done" and reference.counts["opened"] > 1000
    expected = _snapshot()
    _reset()
    return pair, expected


@contextmanager
def _queue_write_held():
    """Another connection holding a SHARE lock on the discrepancy table: reads go on, and a
    run stops at its first write there until the lock is released."""
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("LOCK TABLE reconciliation_discrepancy IN SHARE MODE")
            yield
            cursor.execute("ROLLBACK")
    finally:
        other.close()


def _run_waits_for_the_queue():
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'
                 AND query LIKE '%INSERT INTO reconciliation_discrepancy%'"""
        )
        return cursor.fetchone()[0] == 1


def _runs_finished():
    return ReconciliationRun.objects.unscoped("test setup").exclude(status="running").count()


def _no_run_in_flight():
    # A run holds its pair's advisory lock until it ends. Only this database's: the test
    # sessions beside this one on the same server hold theirs.
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database =
               (SELECT oid FROM pg_database WHERE datname = current_database())"""
        )
        return cursor.fetchone()[0] == 0


def test_a_worker_killed_mid_run_is_redone_by_another_with_the_same_result(loaded):
    pair, expected = loaded
    # Short timeouts so that the second worker restores the killed worker's task within seconds
    # (in production: an hour, and five minutes for the restore lock a dead worker may hold).
    env = {
        "CELERY_VISIBILITY_TIMEOUT": 3,
        "CELERY_UNACKED_MUTEX_EXPIRE": 2,
        "CELERY_UNACKED_RESTORE_INTERVAL": 1,
        "CELERY_UNACKED_RESTORE_THROTTLE": 1,
    }
    with real_broker() as app:
        app.control.purge()
        with celery_worker(**env) as first, _queue_write_held():
            reconcile_pair_task.delay(str(pair.maker.pk), str(pair.shop.pk), "test", True)
            # Mid-run: its links written, uncommitted, and its first write to the queue waiting.
            wait_for(
                _run_waits_for_the_queue,
                what="the run to reach the discrepancy queue",
                progress=worker_progress(first),
            )
            os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child
            first.wait()
        # Its server process finds the client gone when it next answers, and rolls back.
        wait_for(
            _no_run_in_flight,
            what="the killed run's transaction to end",
            progress={"database": DatabaseActivity()},
        )
        assert not ReconciliationRun.objects.unscoped("test setup").filter(status="done").exists()
        assert _snapshot()[0] == []  # nothing half-written survived the kill
        with celery_worker(**env) as second:
            wait_for(
                lambda: (
                    ReconciliationRun.objects.unscoped("test setup").filter(status="done").exists()
                ),
                what="the redelivered run to finish on the second worker",
                progress={"runs finished": _runs_finished, **worker_progress(second)},
            )
    assert _snapshot() == expected


def test_every_task_replayed_twice_gives_the_same_result(loaded):
    pair, expected = loaded
    with real_broker() as app, celery_worker() as worker:
        app.control.purge()
        for _ in range(2):
            reconcile_pair_task.delay(str(pair.maker.pk), str(pair.shop.pk), "replay", True)
            reconcile_pair_task.delay(str(pair.maker.pk), str(pair.shop.pk), "replay", False)
        wait_for(
            lambda: _runs_finished() == 4,
            what="four runs to finish",
            progress={"runs finished": _runs_finished, **worker_progress(worker)},
        )
    assert _snapshot() == expected
    assert set(
        ReconciliationRun.objects.unscoped("test setup").values_list("status", flat=True)
    ) <= {"done", "skipped"}
