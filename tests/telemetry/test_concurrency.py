"""Two batches for the same devices at once both succeed. The ingest bench saw deadlocks (and
500s) when every chunk updated last_seen_at; device rows are now locked once per batch, in id
order. The race is timing-dependent, so this test guards the behaviour rather than reproducing
the old deadlock every time."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from telemetry import services
from tests.support.waiting import DatabaseActivity, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_batches_for_the_same_devices_do_not_deadlock(fleet):
    serials = [f"CC-{i:03d}" for i in range(40)]
    services.devices_register(
        partner=fleet.maker,
        rows=[{"serial": s, "gtin": "04012345678901", "model_name": "DW-1"} for s in serials],
    )
    start = timezone.now() - timedelta(hours=12)
    outcomes, errors = [], []

    def batch(offset):
        rows = [
            {
                "device": serials[(i + offset) % len(serials)],
                "metric": "water_temp_c",
                "value": 40.0 + i % 7,
                "ts": (start + timedelta(seconds=i + offset * 20000)).isoformat(),
            }
            for i in range(16000)
        ]
        if offset:
            rows.reverse()
        try:
            outcomes.append(
                services.readings_ingest(partner=fleet.maker, rows=rows, max_rows=50000)
            )
        except Exception as exc:  # a deadlock would land here
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=batch, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    wait_for(
        lambda: not any(t.is_alive() for t in threads),
        what="both batches to end",
        progress={
            "batches ended": lambda: sum(not t.is_alive() for t in threads),
            "database": DatabaseActivity(),
        },
    )
    assert errors == []
    assert sorted(o["accepted"] for o in outcomes) == [16000, 16000]
