"""A real Celery worker refreshes roll-ups and evaluates rules after an ingest commits."""

import pytest
from django.db import connection

from telemetry.models import HourlyRollup, ServiceSignal
from tests.support.processes import celery_worker, real_broker
from tests.support.waiting import wait_for, worker_progress

from .conftest import ingest, reading, register
from .test_rules import at, rule

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_readings():
    """The readings table is unmanaged, so the transactional flush leaves it alone."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE telemetry_reading")


def test_a_worker_opens_the_signal_after_the_batch_commits(fleet):
    register(fleet.maker, "A")
    rule(fleet.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    with real_broker() as app, celery_worker() as worker:
        app.control.purge()
        summary = ingest(fleet.maker, [reading("A", "filter_hours", v, at(v)) for v in (1, 6, 9)])
        assert summary["accepted"] == 3
        signal = wait_for(
            lambda: ServiceSignal.objects.unscoped("test setup").filter(device__serial="A").first(),
            what="the worker to open the signal",
            progress=worker_progress(worker),
        )
        wait_for(
            HourlyRollup.objects.exists,
            what="the worker to refresh the roll-ups",
            progress=worker_progress(worker),
        )
    assert signal.status == "open" and signal.evidence[0]["value"] == 9
    assert ServiceSignal.objects.unscoped("test setup").count() == 1
