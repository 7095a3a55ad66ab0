"""Writes for webhooks: endpoints, emitting events, delivering them, redelivery.

Deliveries are at least once. Each is a Celery task (``partners.deliver_webhook``) enqueued after
the commit that created it; a worker claims a due delivery by moving ``next_attempt_at`` past its
own time limit, posts without holding a lock, then records the outcome. A failure is retried
with exponential back-off (30 s, 1 min, 2 min … capped at 1 h, ``MAX_ATTEMPTS`` in all). The
minute sweep (``partners.retry_due_webhooks``) enqueues whatever is due and was not enqueued (a
Redis outage at commit, a lost worker, a retry too far ahead for a countdown), so nothing is
lost; a delivery that arrives twice is sent once, because the second finds it claimed.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import (
    WEBHOOK_PING,
    ApiCredential,
    Partner,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)
from ..services import partner_event_record
from . import signing, transport
from .payloads import event_data
from .signals import webhook_acknowledged

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status

SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS_PER_PARTNER = 20
MAX_ATTEMPTS = 10  # 30 s, 1, 2, 4, 8, 16, 32 min, then 1 h twice: about 3 h in all
BACKOFF_BASE = 30
BACKOFF_CAP = 3600
TIMEOUT = 10
# Retries further ahead are left to the sweep: with Redis as the broker, a task whose countdown
# outlives the visibility timeout is delivered again and again, and it sits in a worker's memory.
COUNTDOWN_LIMIT = 15 * 60
SECRET_GRACE = timedelta(hours=24)
PAYLOAD_MAX_BYTES = 256 * 1024


def claim_lease() -> timedelta:
    """How long a claimed delivery is left to the worker that claimed it
    (``WEBHOOK_CLAIM_LEASE_SECONDS``). Longer than the delivery task's hard time limit, so a
    live worker's attempt is never duplicated; a killed worker's delivery comes due again after
    it and the sweep sends it."""
    return timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)


def sweep_grace() -> timedelta:
    """How long the sweep leaves a delivery alone after it came due, because its own task is
    on the way (``WEBHOOK_SWEEP_GRACE_SECONDS``)."""
    return timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)


def backoff(attempt: int) -> timedelta:
    """How long to wait after the ``attempt``-th failed attempt (1-based)."""
    return timedelta(seconds=min(BACKOFF_BASE * 2 ** (max(attempt, 1) - 1), BACKOFF_CAP))


def _new_secret():
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once; the receiver keeps it to verify signatures


def _audit(endpoint, action, actor, credential, **detail):
    partner_event_record(
        partner=endpoint.partner,
        action=action,
        actor=actor,
        credential=credential,
        endpoint=str(endpoint.pk),
        url=endpoint.url,
        **detail,
    )


def _clean_event_types(event_types):
    chosen = sorted(set(event_types or ()))
    unknown = set(chosen) - set(WebhookEventType.values)
    if unknown:
        raise ValidationError(
            {"event_types": f"Unknown event types: {', '.join(sorted(unknown))}."}
        )
    if not chosen:
        raise ValidationError({"event_types": "Choose at least one event type."})
    return chosen


# --- endpoints --------------------------------------------------------------------------------


@transaction.atomic
def endpoint_create(
    *,
    partner: Partner,
    url: str,
    event_types: Iterable[str],
    description: str = "",
    actor: User | None = None,
    credential: ApiCredential | None = None,
) -> IssuedEndpoint:
    """Register an endpoint for some event types. Returns it with its signing secret, which is
    shown to the partner this once."""
    url = transport.validate_endpoint_url(url)
    event_types = _clean_event_types(event_types)
    Partner.objects.for_partner(partner).select_for_update().first()  # serialise
    if WebhookEndpoint.objects.for_partner(partner).count() >= MAX_ENDPOINTS_PER_PARTNER:
        raise ValidationError(
            f"A partner may register at most {MAX_ENDPOINTS_PER_PARTNER} endpoints; "
            "delete one first."
        )
    secret = _new_secret()
    endpoint = WebhookEndpoint(
        partner=partner,
        url=url,
        description=(description or "").strip(),
        event_types=event_types,
        secret=secret,
        created_by=actor,
    )
    endpoint.full_clean()
    endpoint.save()
    _audit(endpoint, "webhook.created", actor, credential, event_types=event_types)
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def endpoint_rotate_secret(
    *,
    endpoint: WebhookEndpoint,
    actor: User | None = None,
    credential: ApiCredential | None = None,
    grace: timedelta = SECRET_GRACE,
) -> IssuedEndpoint:
    """Issue a new signing secret. For ``grace`` the old one signs deliveries too (one more
    ``v1=`` in the header), so the receiver can switch without dropping any."""
    endpoint = (
        WebhookEndpoint.objects.for_partner(endpoint.partner)
        .select_for_update()
        .get(pk=endpoint.pk)
    )
    now = timezone.now()
    secret = _new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + grace
    endpoint.secret = secret
    endpoint.secret_rotated_at = now
    endpoint.save(
        update_fields=[
            "secret",
            "previous_secret",
            "previous_secret_expires_at",
            "secret_rotated_at",
        ]
    )
    _audit(endpoint, "webhook.secret_rotated", actor, credential)
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def endpoint_set_active(
    *,
    endpoint: WebhookEndpoint,
    active: bool,
    actor: User | None = None,
    credential: ApiCredential | None = None,
) -> WebhookEndpoint:
    """Disable an endpoint (its waiting deliveries are given up: nothing more is sent to it) or
    enable it again (new events are delivered; old ones only when redelivered)."""
    endpoint = (
        WebhookEndpoint.objects.for_partner(endpoint.partner)
        .select_for_update()
        .get(pk=endpoint.pk)
    )
    if endpoint.active == active:
        return endpoint
    endpoint.active = active
    endpoint.save(update_fields=["active"])
    if not active:
        endpoint.deliveries.filter(status__in=[Status.PENDING, Status.FAILED]).update(
            status=Status.GAVE_UP, next_attempt_at=None, last_error="The endpoint was disabled."
        )
    _audit(endpoint, "webhook.enabled" if active else "webhook.disabled", actor, credential)
    return endpoint


@transaction.atomic
def endpoint_delete(
    *,
    endpoint: WebhookEndpoint,
    actor: User | None = None,
    credential: ApiCredential | None = None,
) -> None:
    """Delete an endpoint with its delivery log; the audit trail keeps the fact."""
    endpoint = (
        WebhookEndpoint.objects.for_partner(endpoint.partner)
        .select_for_update()
        .get(pk=endpoint.pk)
    )
    _audit(endpoint, "webhook.deleted", actor, credential)
    endpoint.delete()


# --- events -----------------------------------------------------------------------------------


def _enqueue(delivery_ids, countdown=None):
    """Enqueue deliveries once the current transaction commits. If the broker is down the
    sweep enqueues them later (``robust``: a failure here must not fail the caller's commit)."""
    from ..tasks import deliver_webhook

    def enqueue(delivery_id):
        # A function, not a partial: Django names a failed robust callback by its __qualname__.
        return lambda: deliver_webhook.apply_async(args=[str(delivery_id)], countdown=countdown)

    for delivery_id in delivery_ids:
        transaction.on_commit(enqueue(delivery_id), robust=True)


def jsonable(data: object) -> Any:
    """``data`` as JSON values (dates as ISO 8601), bounded in size."""
    payload = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    if len(json.dumps(payload)) > PAYLOAD_MAX_BYTES:
        raise ValueError(f"A webhook payload may not exceed {PAYLOAD_MAX_BYTES} bytes.")
    return payload


def webhook_emit(
    *,
    partner: Partner,
    event_type: str,
    subject: Mapping[str, object],
    dedupe_key: str | None = None,
    ack_token: str = "",
) -> WebhookEvent | None:
    """Store an event for ``partner`` and a delivery to each of its active endpoints that
    subscribe to ``event_type``; enqueue the deliveries after commit.

    ``subject`` says what the event is about (ids and refs, never the data): the data is built
    from it at every attempt by the event type's builder (``payloads``), through the owning
    layer's decision at that moment. This layer never looks at records. ``dedupe_key`` makes
    the call idempotent per partner: the same key returns the event stored the first time.
    ``ack_token``, when given, is sent along and a receiver that answers with its signature in
    ``Clearinghouse-Ack`` acknowledges the event (``signals.webhook_acknowledged``).

    Returns the event, or None when nothing subscribes (or the partner is not active): then
    nothing is stored.
    """
    if event_type not in WebhookEventType.values:
        raise ValueError(f"Unknown webhook event type {event_type!r}.")
    subject = jsonable(subject)
    with transaction.atomic():
        if dedupe_key:
            existing = (
                WebhookEvent.objects.for_partner(partner).filter(dedupe_key=dedupe_key).first()
            )
            if existing is not None:
                return existing
        endpoints = list(
            WebhookEndpoint.objects.for_partner(partner)
            .filter(active=True, event_types__contains=[event_type])
            .filter(partner__status=Partner.Status.ACTIVE)
            .values_list("pk", flat=True)
        )
        if not endpoints:
            return None
        try:
            with transaction.atomic():  # a savepoint: a racing emission of the same key wins
                event = WebhookEvent.objects.create(
                    partner=partner,
                    event_type=event_type,
                    subject=subject,
                    ack_token=str(ack_token or ""),
                    dedupe_key=dedupe_key or "",
                )
        except IntegrityError:
            return WebhookEvent.objects.for_partner(partner).get(dedupe_key=dedupe_key)
        now = timezone.now()
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(endpoint_id=pk, event=event, next_attempt_at=now) for pk in endpoints
        )
        _enqueue([d.pk for d in deliveries])
    return event


@transaction.atomic
def webhook_ping(
    *,
    endpoint: WebhookEndpoint,
    actor: User | None = None,
    credential: ApiCredential | None = None,
) -> WebhookDelivery:
    """Send a test event (type ``ping``) to this one endpoint. Returns its delivery."""
    endpoint = (
        WebhookEndpoint.objects.for_partner(endpoint.partner)
        .select_related("partner")
        .get(pk=endpoint.pk)
    )
    if not endpoint.active:
        raise ValidationError("The endpoint is disabled: enable it before testing it.")
    event = WebhookEvent.objects.create(
        partner=endpoint.partner,
        event_type=WEBHOOK_PING,
        subject={"endpoint": str(endpoint.pk), "message": "A test event from Clearinghouse."},
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=event, next_attempt_at=timezone.now()
    )
    _audit(endpoint, "webhook.ping", actor, credential, delivery=str(delivery.pk))
    _enqueue([delivery.pk])
    return delivery


@transaction.atomic
def delivery_redeliver(
    *,
    delivery: WebhookDelivery,
    actor: User | None = None,
    credential: ApiCredential | None = None,
) -> WebhookDelivery:
    """Send a delivery again now. A waiting one is brought forward; a delivered or given-up one
    starts a new round of attempts. The event is the same as the first time; its data is built
    again, as the partner may see it now."""
    delivery = (
        WebhookDelivery.objects.unscoped("locks again the delivery the caller holds")
        .select_for_update(of=("self",))
        .select_related("endpoint__partner")
        .get(pk=delivery.pk)
    )
    if not delivery.endpoint.active:
        raise ValidationError("The endpoint is disabled: enable it before redelivering.")
    now = timezone.now()
    if delivery.status in (Status.SUCCEEDED, Status.GAVE_UP):
        delivery.status = Status.PENDING
        delivery.attempts = 0
        delivery.redeliveries += 1
    delivery.next_attempt_at = now
    delivery.save(update_fields=["status", "attempts", "redeliveries", "next_attempt_at"])
    _audit(
        delivery.endpoint,
        "webhook.redelivered",
        actor,
        credential,
        delivery=str(delivery.pk),
        event=str(delivery.event_id),
    )
    _enqueue([delivery.pk])
    return delivery


# --- delivering -------------------------------------------------------------------------------


def delivery_body(event: WebhookEvent, data: object) -> bytes:
    """The exact bytes posted (and signed) for an event carrying ``data`` (built for this
    attempt by ``payloads.event_data``)."""
    document = {
        "id": str(event.pk),
        "type": event.event_type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": jsonable(data),
    }
    if event.ack_token:
        document["ack_token"] = event.ack_token
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _claim(delivery_id):
    """Lock a due delivery, count the attempt and push ``next_attempt_at`` past the lease.
    Returns the delivery, or None when it is not ours to send now."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.unscoped("the worker sends the delivery id it was given")
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint__partner", "event")
            .filter(pk=delivery_id, status__in=[Status.PENDING, Status.FAILED])
            .first()
        )
        if delivery is None:
            return None  # done, given up, missing, or another worker holds it
        if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
            return None  # not due: a duplicate message, or one that came early
        endpoint = delivery.endpoint
        refusal = None
        if not endpoint.active:
            refusal = "The endpoint is disabled."
        elif not endpoint.partner.is_active:
            refusal = "The partner is not active."
        elif delivery.attempts >= MAX_ATTEMPTS:
            refusal = "No outcome was recorded for the last attempt."
        if refusal:
            delivery.status = Status.GAVE_UP
            delivery.next_attempt_at = None
            delivery.last_error = refusal
            delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = now + claim_lease()
        delivery.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
    return delivery


NOT_SHARED = (
    "Not sent: the data it holds is no longer shared with you (a consent was withdrawn or an "
    "agreement changed)."
)


def _give_up(delivery, reason):
    """A claimed delivery that will not be sent: nothing of it may be shown any more."""
    WebhookDelivery.objects.unscoped("the worker gives up the delivery it claimed").filter(
        pk=delivery.pk
    ).update(status=Status.GAVE_UP, next_attempt_at=None, last_error=reason)


def _record(delivery, *, answer=None, error="", refused=False, started, duration_ms):
    """Write the attempt and the delivery's new state; schedule the next attempt."""
    ok = answer is not None and 200 <= answer.status < 300
    with transaction.atomic():
        claimed = WebhookDelivery.objects.unscoped("the worker records the delivery it claimed")
        current = claimed.select_for_update().filter(pk=delivery.pk).first()
        if current is None:
            return None  # the endpoint was deleted while the attempt was under way
        WebhookAttempt.objects.create(
            delivery=current,
            number=delivery.attempts,
            manual=current.redeliveries > 0,
            attempted_at=started,
            duration_ms=duration_ms,
            status_code=answer.status if answer else None,
            error=error[:300],
            response_excerpt=answer.excerpt if answer else "",
        )
        if current.status == Status.SUCCEEDED and not ok:
            return current  # a parallel attempt (a redelivery) already got through
        now = timezone.now()
        current.last_status_code = answer.status if answer else None
        current.last_error = error[:300]
        current.last_response_excerpt = answer.excerpt if answer else ""
        if ok:
            current.status = Status.SUCCEEDED
            current.delivered_at = now
            current.next_attempt_at = None
            _check_acknowledgement(current, delivery, answer, now)
        elif refused or current.attempts >= MAX_ATTEMPTS:
            current.status = Status.GAVE_UP
            current.next_attempt_at = None
        else:
            wait = backoff(current.attempts)
            current.status = Status.FAILED
            current.next_attempt_at = now + wait
            if wait.total_seconds() <= COUNTDOWN_LIMIT:
                _enqueue([current.pk], countdown=int(wait.total_seconds()))
        current.save()
    return current


def _check_acknowledgement(current, delivery, answer, now):
    event = delivery.event
    if not event.ack_token:
        return
    header = answer.headers.get(signing.ACK_HEADER.lower())
    if header is None:
        return
    ok = signing.verify_ack(
        secrets=delivery.endpoint.signing_secrets(now), token=event.ack_token, header=header
    )
    current.acknowledged_signature_ok = ok
    if ok:
        webhook_acknowledged.send(
            sender=WebhookEvent,
            event_id=event.pk,
            partner_id=event.partner_id,
            event_type=event.event_type,
            ack_token=event.ack_token,
            delivery_id=current.pk,
            acknowledged_at=now,
        )


def webhook_deliver(*, delivery_id: uuid.UUID | str) -> str | None:
    """Make one attempt of a delivery if it is due, and record it. Safe to call twice, or for a
    delivery that is done: it then does nothing. Returns the delivery's status, or None."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    endpoint, event = delivery.endpoint, delivery.event
    started = timezone.now()
    clock = time.monotonic()
    data = event_data(event, channel="webhook")  # through the decision, logged, for this attempt
    if data is None:
        _give_up(delivery, NOT_SHARED)
        return Status.GAVE_UP
    body = delivery_body(event, data)
    answer, error, refused = None, "", False
    try:
        dest = transport.destination(endpoint.url)
        headers = {
            "Content-Type": "application/json",
            "Clearinghouse-Event": event.event_type,
            "Clearinghouse-Delivery": str(delivery.pk),
            "Clearinghouse-Attempt": str(delivery.attempts),
            signing.SIGNATURE_HEADER: signing.signature_header(
                secrets=endpoint.signing_secrets(), body=body, timestamp=time.time()
            ),
        }
        answer = transport.post(dest, body=body, headers=headers, timeout=TIMEOUT)
        if not 200 <= answer.status < 300:
            error = f"HTTP {answer.status}"
    except transport.DeliveryRefused as exc:
        error, refused = str(exc), True
    except transport.TransportError as exc:
        error = str(exc)
    duration_ms = int((time.monotonic() - clock) * 1000)
    outcome = _record(
        delivery,
        answer=answer,
        error=error,
        refused=refused,
        started=started,
        duration_ms=duration_ms,
    )
    return outcome.status if outcome else None


def webhooks_enqueue_due(*, limit: int = 1000) -> int:
    """Enqueue every delivery that is due and was not picked up (the minute sweep). Returns how
    many were enqueued."""
    from ..tasks import deliver_webhook

    due = list(
        WebhookDelivery.objects.unscoped("the sweep works for every partner's deliveries")
        .filter(
            status__in=[Status.PENDING, Status.FAILED],
            next_attempt_at__lte=timezone.now() - sweep_grace(),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        deliver_webhook.delay(str(delivery_id))
    return len(due)
