"""Signed webhooks: emitting, signing, delivering to a real HTTP receiver on 127.0.0.1, back-off,
redelivery, dedupe, refusals, the sweep, acknowledgements — and one real Celery worker."""

import json
import socket
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from partners import webhooks
from partners.models import (
    Partner,
    PartnerEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from partners.webhooks import transport
from tests.support.webhook_receiver import receiver_fixture  # noqa: F401

SHARED = "record.shared"


@pytest.fixture
def shop(make_partner):
    return make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")


def register(partner, admin, url, event_types=(SHARED,)):
    return webhooks.endpoint_create(
        partner=partner, url=url, event_types=list(event_types), actor=admin
    )


def emit(partner, capture, event_type=SHARED, data=None, **kwargs):
    """Emit and let the deliveries run (eagerly) once the transaction would commit."""
    with capture(execute=True):
        return webhooks.webhook_emit(
            partner=partner, event_type=event_type, subject=data or {"ref": "R-1"}, **kwargs
        )


def deliver_when_due(delivery):
    """Make the delivery due now and run one attempt, as the retry task would."""
    WebhookDelivery.objects.unscoped("test setup").filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    return webhooks.webhook_deliver(delivery_id=delivery.pk)


def test_a_delivery_is_signed_with_the_endpoint_secret(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    issued = register(partner, admin, receiver.url)
    event = emit(partner, django_capture_on_commit_callbacks, data={"ref": "R-1", "kind": "sale"})

    (request,) = receiver.wait_for(1)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert request.path == "/hooks/clearinghouse"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["clearinghouse-event"] == SHARED
    assert request.headers["clearinghouse-delivery"] == str(delivery.pk)
    assert webhooks.verify_signature(
        secret=issued.secret, header=request.headers["clearinghouse-signature"], body=request.body
    )
    assert not webhooks.verify_signature(
        secret="whsec_wrong", header=request.headers["clearinghouse-signature"], body=request.body
    )
    body = request.json()
    assert body == {
        "id": str(event.pk),
        "type": SHARED,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"ref": "R-1", "kind": "sale"},
    }
    assert delivery.status == "succeeded" and delivery.last_status_code == 200
    assert delivery.delivered_at and delivery.attempts == 1
    assert delivery.last_response_excerpt == '{"ok": true}'
    attempt = WebhookAttempt.objects.unscoped("test setup").get()
    assert attempt.status_code == 200 and attempt.number == 1


def test_the_signature_refuses_old_timestamps_and_tampered_bodies():
    body = b'{"id":"1"}'
    now = 1_800_000_000
    header = webhooks.signature_header(secrets=["whsec_a"], body=body, timestamp=now)
    verify = webhooks.verify_signature
    assert verify(secret="whsec_a", header=header, body=body, now=now + 299)
    assert verify(secret="whsec_a", header=header, body=body.decode(), now=now - 299)
    assert not verify(secret="whsec_a", header=header, body=body, now=now + 301)  # replay
    assert not verify(secret="whsec_a", header=header, body=body, now=now + 61, tolerance=60)
    assert not verify(secret="whsec_a", header=header, body=body + b" ", now=now)
    forged = header.replace(f"t={now}", f"t={now + 1000}")  # a fresh time on an old signature
    assert not verify(secret="whsec_a", header=forged, body=body, now=now + 1000)
    for malformed in ["", "v1=abc", f"t={now}", f"t=x,v1={'0' * 64}", f"t={now},t={now},v1=a"]:
        assert not verify(secret="whsec_a", header=malformed, body=body, now=now)


def test_failures_back_off_exponentially_up_to_the_cap_then_give_up(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    register(partner, admin, receiver.url)
    receiver.fail_first(100, status=503)
    emit(partner, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    waits = []
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        if attempt > 1:
            # Not due yet: a duplicate message sends nothing.
            assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None
            assert len(receiver.requests) == attempt - 1
            assert deliver_when_due(delivery) in ("failed", "gave_up")
        delivery.refresh_from_db()
        assert delivery.attempts == attempt and delivery.last_status_code == 503
        if delivery.status == "failed":
            waits.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS
    assert delivery.status == "gave_up" and delivery.next_attempt_at is None
    assert [round(w) for w in waits] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert max(waits) < 3601  # capped at an hour (measured from the attempt's start)
    assert (
        WebhookAttempt.objects.unscoped("test setup").filter(delivery=delivery).count()
        == webhooks.MAX_ATTEMPTS
    )
    assert deliver_when_due(delivery) is None  # given up: nothing more is sent
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS


def test_a_failed_delivery_gets_through_on_a_later_attempt(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    issued = register(partner, admin, receiver.url)
    receiver.fail_first(2)
    emit(partner, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert delivery.status == "failed" and delivery.last_status_code == 500
    assert deliver_when_due(delivery) == "failed"
    assert deliver_when_due(delivery) == "succeeded"
    first, _, third = receiver.wait_for(3)
    assert first.body == third.body  # the same bytes on every attempt
    assert third.headers["clearinghouse-attempt"] == "3"
    assert webhooks.verify_signature(
        secret=issued.secret, header=third.headers["clearinghouse-signature"], body=third.body
    )


def test_manual_redelivery_sends_the_same_event_again(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    register(partner, admin, receiver.url)
    emit(partner, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.delivery_redeliver(delivery=delivery, actor=admin)
    first, second = receiver.wait_for(2)
    assert first.json()["id"] == second.json()["id"] and first.body == second.body
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.redeliveries == 1
    assert (
        WebhookAttempt.objects.unscoped("test setup").filter(delivery=delivery, manual=True).count()
        == 1
    )
    assert (
        PartnerEvent.objects.unscoped("test setup")
        .filter(partner=partner, action="webhook.redelivered")
        .exists()
    )


def test_a_given_up_delivery_can_be_redelivered_for_a_new_round(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    register(partner, admin, receiver.url)
    receiver.fail_first(1)
    emit(partner, django_capture_on_commit_callbacks)
    WebhookDelivery.objects.unscoped("test setup").update(status="gave_up", next_attempt_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.delivery_redeliver(
            delivery=WebhookDelivery.objects.unscoped("test setup").get(), actor=admin
        )
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert [r.answered for r in receiver.requests] == [500, 200]


def test_the_same_dedupe_key_stores_one_event_and_delivers_once(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    register(partner, admin, receiver.url)
    first = emit(partner, django_capture_on_commit_callbacks, dedupe_key="record:R-1")
    again = emit(
        partner, django_capture_on_commit_callbacks, data={"ref": "other"}, dedupe_key="record:R-1"
    )
    assert again.pk == first.pk
    assert (
        WebhookEvent.objects.unscoped("test setup").count()
        == WebhookDelivery.objects.unscoped("test setup").count()
        == 1
    )
    assert len(receiver.requests) == 1


def test_only_the_partners_active_subscribed_endpoints_receive_an_event(
    shop, make_partner, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    other, other_admin = make_partner(name="Other")
    subscribed = register(partner, admin, receiver.url).endpoint
    register(partner, admin, receiver.url + "/signals", event_types=["service.signal"])
    disabled = register(partner, admin, receiver.url + "/off").endpoint
    webhooks.endpoint_set_active(endpoint=disabled, active=False, actor=admin)
    register(other, other_admin, receiver.url + "/other")
    assert webhooks.webhook_subscribed(partner=partner, event_type=SHARED)
    assert not webhooks.webhook_subscribed(partner=partner, event_type="discrepancy.opened")
    emit(partner, django_capture_on_commit_callbacks)
    assert [r.path for r in receiver.requests] == ["/hooks/clearinghouse"]
    assert list(
        WebhookDelivery.objects.unscoped("test setup").values_list("endpoint", flat=True)
    ) == [subscribed.pk]
    nobody = emit(partner, django_capture_on_commit_callbacks, event_type="discrepancy.opened")
    assert nobody is None and WebhookEvent.objects.unscoped("test setup").count() == 1


def test_unknown_event_types_are_refused(shop):
    partner, _ = shop
    with pytest.raises(ValueError):
        webhooks.webhook_emit(partner=partner, event_type="ping", subject={})
    with pytest.raises(ValidationError):
        webhooks.endpoint_create(partner=partner, url="https://x.example/h", event_types=["nope"])


def test_plain_http_is_refused_at_registration_and_delivery_outside_development(
    shop, receiver, settings, django_capture_on_commit_callbacks
):
    partner, admin = shop
    register(partner, admin, receiver.url)  # allowed in development and tests
    settings.WEBHOOKS_ALLOW_HTTP = False
    with pytest.raises(ValidationError, match="HTTPS"):
        register(partner, admin, receiver.url)
    emit(partner, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert receiver.requests == []
    assert delivery.status == "gave_up" and "HTTPS" in delivery.last_error
    assert delivery.last_status_code is None


def test_private_addresses_are_refused_outside_development(shop, settings):
    partner, admin = shop
    settings.WEBHOOKS_ALLOW_HTTP = False
    for url in ["https://127.0.0.1/h", "https://localhost/h", "https://10.1.2.3/h"]:
        with pytest.raises(ValidationError, match="public"):
            register(partner, admin, url)
    with pytest.raises(transport.DeliveryRefused, match="non-public"):
        transport.destination("https://localhost:8443/hooks")


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@hooks.example/h",
        "ftp://hooks.example/h",
        "https://hooks.example/h#part",
        "not a url",
        "",
        "https://" + "a" * 2000 + ".example/",
    ],
)
def test_registration_refuses_bad_addresses_and_stores_nothing(shop, url):
    partner, admin = shop
    with pytest.raises(ValidationError) as refused:
        register(partner, admin, url)
    assert "url" in refused.value.message_dict
    assert not WebhookEndpoint.objects.unscoped("test setup").exists()


def test_the_secret_is_shown_once_and_rotation_signs_with_both_for_a_while(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    issued = register(partner, admin, receiver.url)
    assert issued.secret.startswith("whsec_") and len(issued.secret) > 40
    rotated = webhooks.endpoint_rotate_secret(endpoint=issued.endpoint, actor=admin)
    assert rotated.secret != issued.secret
    emit(partner, django_capture_on_commit_callbacks)
    request = receiver.wait_for(1)[0]
    header = request.headers["clearinghouse-signature"]
    assert header.count("v1=") == 2
    for secret in (issued.secret, rotated.secret):
        assert webhooks.verify_signature(secret=secret, header=header, body=request.body)
    WebhookEndpoint.objects.unscoped("test setup").update(previous_secret_expires_at=timezone.now())
    emit(partner, django_capture_on_commit_callbacks, data={"ref": "R-2"})
    later = receiver.wait_for(2)[1]
    header = later.headers["clearinghouse-signature"]
    assert header.count("v1=") == 1
    assert webhooks.verify_signature(secret=rotated.secret, header=header, body=later.body)
    assert not webhooks.verify_signature(secret=issued.secret, header=header, body=later.body)


def test_disabling_an_endpoint_gives_up_its_waiting_deliveries(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    endpoint = register(partner, admin, receiver.url).endpoint
    receiver.fail_first(1)
    emit(partner, django_capture_on_commit_callbacks)
    webhooks.endpoint_set_active(endpoint=endpoint, active=False, actor=admin)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert delivery.status == "gave_up" and "disabled" in delivery.last_error
    with pytest.raises(ValidationError):
        webhooks.delivery_redeliver(delivery=delivery, actor=admin)


def test_an_unreachable_receiver_is_a_failed_attempt_with_a_reason(
    shop, django_capture_on_commit_callbacks
):
    partner, admin = shop
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    register(partner, admin, f"http://127.0.0.1:{port}/h")
    emit(partner, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert delivery.last_error == "Connection refused."


def test_a_long_answer_is_kept_only_in_part(shop, receiver, django_capture_on_commit_callbacks):
    partner, admin = shop
    register(partner, admin, receiver.url)
    receiver.response_body = b"x" * 10_000
    emit(partner, django_capture_on_commit_callbacks)
    assert len(WebhookDelivery.objects.unscoped("test setup").get().last_response_excerpt) == 500


def test_the_sweep_enqueues_due_deliveries_that_no_task_carries(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    register(partner, admin, receiver.url)
    # Emitted without running the on-commit enqueue: as if Redis was down at commit.
    webhooks.webhook_emit(partner=partner, event_type=SHARED, subject={"ref": "lost"})
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert webhooks.webhooks_enqueue_due() == 0  # just created: its own task is on the way
    WebhookDelivery.objects.unscoped("test setup").update(
        next_attempt_at=timezone.now() - timedelta(minutes=2)
    )
    assert webhooks.webhooks_enqueue_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 1
    assert webhooks.webhooks_enqueue_due() == 0


def test_a_claimed_delivery_whose_worker_died_comes_due_again(shop, receiver):
    partner, admin = shop
    register(partner, admin, receiver.url)
    webhooks.webhook_emit(partner=partner, event_type=SHARED, subject={"ref": "R"})
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    # A worker claimed it and died before recording anything.
    WebhookDelivery.objects.unscoped("test setup").update(
        attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) is None  # still leased
    assert deliver_when_due(delivery) == "succeeded"
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and len(receiver.requests) == 1


def test_a_signed_acknowledgement_is_verified_and_announced(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    issued = register(partner, admin, receiver.url)
    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs)

    webhooks.webhook_acknowledged.connect(listener)
    try:
        receiver.acknowledge_with("whsec_not_the_secret")
        emit(partner, django_capture_on_commit_callbacks, ack_token="token-1")
        assert (
            WebhookDelivery.objects.unscoped("test setup").get().acknowledged_signature_ok is False
        )
        assert heard == []
        receiver.acknowledge_with(issued.secret)
        event = emit(partner, django_capture_on_commit_callbacks, ack_token="token-2")
    finally:
        webhooks.webhook_acknowledged.disconnect(listener)
    assert receiver.requests[-1].json()["ack_token"] == "token-2"
    delivery = WebhookDelivery.objects.unscoped("test setup").get(event=event)
    assert delivery.acknowledged_signature_ok is True
    assert len(heard) == 1 and heard[0]["ack_token"] == "token-2"
    assert heard[0]["partner_id"] == partner.pk and heard[0]["event_type"] == SHARED
    # Without an ack token there is nothing to acknowledge.
    emit(partner, django_capture_on_commit_callbacks, data={"ref": "plain"})
    assert (
        WebhookDelivery.objects.unscoped("test setup")
        .order_by("-created_at")[0]
        .acknowledged_signature_ok
        is None
    )


def test_a_test_event_goes_to_that_endpoint_only(
    shop, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    endpoint = register(partner, admin, receiver.url).endpoint
    register(partner, admin, receiver.url + "/second")
    with django_capture_on_commit_callbacks(execute=True):
        delivery = webhooks.webhook_ping(endpoint=endpoint, actor=admin)
    (request,) = receiver.wait_for(1)
    assert request.path == "/hooks/clearinghouse" and request.json()["type"] == "ping"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


def test_a_suspended_partner_gets_no_events(
    shop, operator, receiver, django_capture_on_commit_callbacks
):
    from partners import services

    partner, admin = shop
    register(partner, admin, receiver.url)
    webhooks.webhook_emit(partner=partner, event_type=SHARED, subject={"ref": "R"})
    services.partner_suspend(partner=partner, actor=operator)
    assert deliver_when_due(WebhookDelivery.objects.unscoped("test setup").get()) is None
    assert (
        WebhookDelivery.objects.unscoped("test setup").get().status == "gave_up"
        and receiver.requests == []
    )
    assert emit(partner, django_capture_on_commit_callbacks) is None


# --- a real worker ------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_and_redelivers_to_the_receiver(make_partner, receiver):
    from tests.support.processes import celery_worker, real_broker
    from tests.support.waiting import wait_for, worker_progress

    partner, admin = make_partner(kind=Partner.Kind.RETAILER, name="Worker Retail")
    issued = register(partner, admin, receiver.url)
    with real_broker() as app, celery_worker() as worker:
        app.control.purge()
        # A test event: its data is its own (the worker's builders read records of the core).
        event = webhooks.webhook_ping(endpoint=issued.endpoint, actor=admin).event
        (request,) = receiver.wait_for(1, progress=worker_progress(worker))
        delivery = wait_for(
            lambda: (
                WebhookDelivery.objects.unscoped("test setup")
                .filter(event=event, status="succeeded")
                .first()
            ),
            what="the worker to record the delivery",
            progress=worker_progress(worker),
        )
        webhooks.delivery_redeliver(delivery=delivery, actor=admin)
        receiver.wait_for(2, progress=worker_progress(worker))
        wait_for(
            lambda: (
                WebhookAttempt.objects.unscoped("test setup").filter(delivery=delivery).count() == 2
            ),
            what="the redelivery to be recorded",
            progress=worker_progress(worker),
        )
    assert webhooks.verify_signature(
        secret=issued.secret,
        header=request.headers["clearinghouse-signature"],
        body=request.body,
        now=time.time(),
    )
    assert json.loads(request.body)["data"]["endpoint"] == str(issued.endpoint.pk)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.redeliveries == 1
