"""A Celery worker killed with SIGKILL in the middle of rule evaluation and of a webhook delivery:
after a new worker finishes, the result equals an uninterrupted run and nothing is duplicated.
(The same for reconciliation: tests/reconciliation/test_worker.py.)"""

import os
import signal

import pytest

from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from partners import webhooks
from partners.models import Partner, WebhookAttempt, WebhookDelivery
from partners.tasks import retry_due_webhooks
from telemetry import services as telemetry_services
from telemetry.models import CustomerPrompt, ServiceSignal
from telemetry.tasks import evaluate_rules
from tests.records.conftest import consent, registration
from tests.support.processes import celery_worker, queued_tasks, real_broker
from tests.support.waiting import wait_for, worker_progress
from tests.support.webhook_receiver import WebhookReceiver
from tests.telemetry.conftest import GTIN, ingest, reading, register
from tests.telemetry.test_rules import at, rule

from .conftest import FAST_RESTORE

pytestmark = [pytest.mark.worker, pytest.mark.faults, pytest.mark.django_db(transaction=True)]

DEVICES = 200
CARED_FOR = 10  # devices whose customer consented: a service request and a prompt each


def _kill(worker):
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool child, mid-task
    worker.wait()


# --- rule evaluation --------------------------------------------------------------------------


def _signals_snapshot():
    signals = sorted(
        (s.device.serial, s.rule_id, s.status, tuple(e["value"] for e in s.evidence))
        for s in ServiceSignal.objects.unscoped("test setup").select_related("device")
    )
    prompts = sorted(
        (p.signal.device.serial, str(p.customer_id), str(p.retailer_id), p.text)
        for p in CustomerPrompt.objects.select_related("signal__device")
    )
    requests = sorted(
        (r.serial, str(r.customer_id), r.payload["issue"], r.payload["proactive"])
        for r in InteractionRecord.objects.unscoped("test setup").filter(kind="service_request")
    )
    return signals, prompts, requests


def _signals_reset():
    CustomerPrompt.objects.all().delete()
    ServiceSignal.objects.unscoped("test setup").all().delete()
    InteractionRecord.objects.unscoped("test setup").filter(kind="service_request").delete()


def test_rule_evaluation_killed_mid_run_ends_like_an_uninterrupted_run(fleet, clean_readings):
    serials = [f"K{i:05d}" for i in range(DEVICES)]
    devices = register(fleet.maker, *serials)
    records_ingest(
        partner=fleet.maker,
        max_rows=CARED_FOR,
        rows=[
            registration(email=f"k{i}@example.org", serial=s, product={"gtin": GTIN, "serial": s})
            for i, s in enumerate(serials[:CARED_FOR])
        ],
    )
    for i in range(CARED_FOR):
        consent(
            fleet.shop,
            email=f"k{i}@example.org",
            purpose="service",
            categories=["service", "telemetry"],
        )
    # Readings first, the rule after: the (eager) evaluation after this commit finds no rule.
    ingest(
        fleet.maker, [reading(s, "filter_hours", 10 + i % 7, at(0)) for i, s in enumerate(serials)]
    )
    rule(fleet.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    ids = [d.pk for d in devices]

    telemetry_services.rules_evaluate(device_ids=ids)  # the uninterrupted reference
    expected = _signals_snapshot()
    assert len(expected[0]) == DEVICES and len(expected[1]) == len(expected[2]) == CARED_FOR
    _signals_reset()

    with real_broker() as app:
        app.control.purge()
        with celery_worker(**FAST_RESTORE) as first:
            evaluate_rules.delay(ids)
            wait_for(
                ServiceSignal.objects.unscoped("test setup").exists,
                what="the evaluation to open its first signals",
                progress=worker_progress(first),
            )
            _kill(first)
        opened = ServiceSignal.objects.unscoped("test setup").count()
        assert 0 < opened < DEVICES, "the kill must land in the middle of the evaluation"
        with celery_worker(**FAST_RESTORE) as second:
            wait_for(
                lambda: (
                    ServiceSignal.objects.unscoped("test setup").count() == DEVICES
                    and _signals_snapshot() == expected
                ),
                what="the redelivered evaluation to finish on the second worker",
                progress={
                    "signals": ServiceSignal.objects.unscoped("test setup").count,
                    **worker_progress(second),
                },
            )
    assert _signals_snapshot() == expected
    # One live signal per device and rule, one service request and one prompt per cared-for one.
    assert (
        ServiceSignal.objects.unscoped("test setup").values("device_id").distinct().count()
        == DEVICES
    )


# --- webhook delivery -------------------------------------------------------------------------


def test_webhook_delivery_killed_mid_request_is_sent_again_and_logged_once(make_partner):
    partner, admin = make_partner(kind=Partner.Kind.RETAILER, name="Slow receiver retail")
    events = 3
    env = {**FAST_RESTORE, "WEBHOOK_CLAIM_LEASE_SECONDS": 4, "WEBHOOK_SWEEP_GRACE_SECONDS": 0}
    with WebhookReceiver() as receiver, real_broker() as app:
        receiver.hold()  # no answer: the kill lands while the worker waits for it
        issued = webhooks.endpoint_create(
            partner=partner, url=receiver.url, event_types=["record.shared"], actor=admin
        )
        app.control.purge()
        with celery_worker(**env) as first:
            for _ in range(events):  # test events: their data is their own
                webhooks.webhook_ping(endpoint=issued.endpoint, actor=admin)
            wait_for(
                lambda: receiver.arrivals >= 1,
                what="the first delivery to arrive",
                progress=worker_progress(first),
            )
            _kill(first)
        assert (
            not WebhookDelivery.objects.unscoped("test setup").filter(status="succeeded").exists()
        )
        receiver.delay = 0.2
        receiver.release()

        def succeeded():
            return WebhookDelivery.objects.unscoped("test setup").filter(status="succeeded").count()

        with celery_worker(**env):
            # The beat's minute sweep, run more often: it sends what the dead worker held. Sent
            # again once the worker has taken the last one, so that sweeps never pile up.
            def all_delivered():
                if succeeded() == events:
                    return True
                if queued_tasks() == 0:
                    retry_due_webhooks.delay()
                return False

            # Progress is the deliveries alone: the sweeps keep the worker busy regardless.
            wait_for(
                all_delivered,
                what="every delivery to succeed",
                progress={
                    "succeeded": succeeded,
                    "attempts": WebhookAttempt.objects.unscoped("test setup").count,
                    "arrivals": lambda: receiver.arrivals,
                },
                interval=0.5,
            )

    deliveries = {
        str(d.pk): d for d in WebhookDelivery.objects.unscoped("test setup").select_related("event")
    }
    assert len(deliveries) == events
    for delivery_id, delivery in deliveries.items():
        # The delivery log ends with exactly one success per event and endpoint.
        successes = WebhookAttempt.objects.unscoped("test setup").filter(
            delivery_id=delivery_id, status_code=200
        )
        assert successes.count() == 1
        assert delivery.status == "succeeded" and delivery.next_attempt_at is None
    # The receiver may have seen the interrupted one twice (at least once), always with the same
    # delivery id, body and a valid signature: deduplicating on the id gives each event once.
    seen = {}
    for request in receiver.requests:
        assert webhooks.verify_signature(
            secret=issued.secret,
            header=request.headers["clearinghouse-signature"],
            body=request.body,
        )
        delivery_id = request.headers["clearinghouse-delivery"]
        assert seen.setdefault(delivery_id, request.body) == request.body
    assert set(seen) == set(deliveries)
    assert receiver.arrivals >= events
