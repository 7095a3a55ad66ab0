"""A real Celery worker chains partner reads into the ledger after their commit."""

import pytest
from django.core.cache import cache

from consent import services
from consent.ledger import ledger_verify
from consent.models import AccessLogEntry, LedgerEntry
from partners.models import Partner
from tests.support.processes import celery_worker, real_broker
from tests.support.waiting import wait_for, worker_progress

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _read(partner, customer, request_id):
    services.access_record(
        partner=partner,
        channel="api",
        request_id=request_id,
        accesses={customer.pk: services.Access(1, {"warranty"}, {"purchase"})},
    )


def test_reads_are_chained_by_a_real_worker_and_the_sweep(make_partner, make_customer):
    from consent.tasks import chain_access_log

    maker, _ = make_partner()
    shop, _ = make_partner(kind=Partner.Kind.RETAILER)
    customer = make_customer("alice@example.org", shop)
    cache.delete(services.ACCESS_CHAIN_PENDING)
    with real_broker() as app, celery_worker() as worker:
        app.control.purge()
        for n in range(5):  # a burst: one task chains them all
            _read(maker, customer, f"req-{n}")
        wait_for(
            lambda: not AccessLogEntry.objects.filter(ledger_seq__isnull=True).exists(),
            what="the worker to chain the reads",
            progress=worker_progress(worker),
        )
        # A schedule lost with Redis (the mark stays, no task): the beat's sweep chains the read.
        cache.set(services.ACCESS_CHAIN_PENDING, 1, timeout=60)
        _read(maker, customer, "req-lost")
        assert AccessLogEntry.objects.filter(ledger_seq__isnull=True).count() == 1
        chain_access_log.delay(sweep=True)
        wait_for(
            lambda: not AccessLogEntry.objects.filter(ledger_seq__isnull=True).exists(),
            what="the sweep to chain the read",
            progress=worker_progress(worker),
        )
    requests = LedgerEntry.objects.filter(kind="data.accessed").order_by("seq")
    assert [e.payload["request"] for e in requests] == [
        *(f"req-{n}" for n in range(5)),
        "req-lost",
    ]
    assert ledger_verify()[1] == []
