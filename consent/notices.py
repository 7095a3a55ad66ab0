"""GDPR Art. 19: telling the recipients of a customer's data about a withdrawal or an erasure.

A recipient is a partner that read the customer's data (it appears in the access log):

- a withdrawal (by the customer in the dashboard, or relayed by the grantee at its touchpoint)
  concerns the grantee when it read the customer's data for that purpose;
- an erasure concerns every partner in the access log. The erasure deletes the access log, so
  the erasure service captures the recipients inside its own transaction
  (``notices_capture_for_erasure``, before the access log goes; its signed receipt names them)
  and they are told after it commits (``customer_erased``).

Each recipient gets a ``RecipientNotice`` and, when it listens for it, a webhook
(``consent.revoked`` / ``customer.erased``) holding only pseudonymous ids. It acknowledges by
answering the webhook with a signed ``Clearinghouse-Ack`` (``partners.webhooks``), or with
``POST /api/v1/notices/{id}/acknowledge``; a withdrawal the grantee relayed itself counts as
acknowledged by that call. Silent recipients are chased (1 h, then 4 h, then daily) by the
``consent.chase_notices`` beat task, which also catches up any withdrawal whose after-commit
signal was lost. Creating and acknowledging a notice are written to the ledger.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from partners.models import Partner, WebhookEventType
from partners.webhooks import payload_builder, webhook_emit

from .catalogue import PURPOSES
from .ledger import ledger_append, ledger_append_many
from .models import AccessLogEntry, ConsentGrant, Customer, RecipientNotice

Kind = RecipientNotice.Kind
Via = RecipientNotice.Via

EVENT_TYPES = {
    Kind.REVOCATION: WebhookEventType.CONSENT_REVOKED,
    Kind.ERASURE: WebhookEventType.CUSTOMER_ERASED,
}
# A superseded grant was replaced, not withdrawn; one ended by erasure has the erasure's notice.
WITHDRAWN_BY = (ConsentGrant.Ended.CUSTOMER, ConsentGrant.Ended.PARTNER)
# Pauses before each reminder, from the notice (then from the previous reminder); the last one
# repeats: 1 h, 4 h, then every 24 h until the recipient acknowledges.
CHASE_PAUSES = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
CHASE_BATCH = 500
# The chase also creates notices for withdrawals of this recent past that have none (their
# after-commit signal was lost), leaving the last few minutes to the signal itself.
CATCH_UP_WINDOW = timedelta(days=2)
CATCH_UP_SETTLE = timedelta(minutes=5)


def acknowledge_url(notice_id: uuid.UUID) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/api/v1/notices/{notice_id}/acknowledge"


def notice_payload(notice: RecipientNotice, *, reminder: int = 0) -> dict[str, Any]:
    """The webhook's ``data``: the notice, the pseudonymous customer, the purpose and when —
    never an identifier."""
    data = {
        "notice": str(notice.pk),
        "kind": notice.kind,
        "customer": str(notice.customer_id),
        "purpose": notice.purpose or None,
        "acknowledge_url": acknowledge_url(notice.pk),
        "reminder": reminder,
    }
    when = "revoked_at" if notice.kind == Kind.REVOCATION else "erased_at"
    data[when] = notice.occurred_at.isoformat()
    return data


@payload_builder(*EVENT_TYPES.values())
def notice_data(
    *, partner: Partner, subject: Mapping[str, Any], channel: str, request_id: str = ""
) -> dict[str, Any] | None:
    """A notice's webhook data, built when it is sent: pseudonymous ids and dates only."""
    notice = RecipientNotice.objects.for_partner(partner).filter(pk=subject.get("notice")).first()
    if notice is None:
        return None
    return notice_payload(notice, reminder=subject.get("reminder", 0))


def _emit(notice, *, reminder):
    """The webhook for a notice; the receiver acknowledges by signing the notice id. A
    recipient with no endpoint for it is e-mailed instead (its admins, after commit): the
    notice waits in its portal under Notices."""
    key = f"notice:{notice.pk}" if reminder == 0 else f"notice:{notice.pk}:reminder:{reminder}"
    event = webhook_emit(
        partner=notice.partner,
        event_type=EVENT_TYPES[notice.kind],
        subject={"notice": str(notice.pk), "reminder": reminder},
        dedupe_key=key,
        ack_token=str(notice.pk),
    )
    if event is None:
        from .tasks import send_notice_email

        notice_id = str(notice.pk)
        transaction.on_commit(lambda: send_notice_email.delay(notice_id, reminder), robust=True)
    return event


def _send(notice):
    """Emit a notice's first webhook (idempotent by its dedupe key) and note when."""
    event = _emit(notice, reminder=0)
    if event is not None and notice.sent_at is None:
        notice.sent_at = event.created_at
        RecipientNotice.objects.for_partner(notice.partner).filter(
            pk=notice.pk, sent_at__isnull=True
        ).update(sent_at=notice.sent_at)
    return event


def _ledger_row(notice):
    return (
        "notice.created",
        notice.customer_id,
        notice.partner_id,
        {
            "notice": str(notice.pk),
            "notice_kind": notice.kind,
            "consent": str(notice.grant_id) if notice.grant_id else None,
            "purpose": notice.purpose or None,
        },
    )


# --- creating and sending ---------------------------------------------------------------------


def notices_for_revocation(*, grant_id: uuid.UUID) -> RecipientNotice | None:
    """After a withdrawal commits: a notice for the grantee if it read the customer's data for
    that purpose, and its webhook. Safe to call twice. Returns the notice or None."""
    grants = ConsentGrant.objects.unscoped("the task runs for the grant id it was given")
    grant = grants.select_related("grantee").filter(pk=grant_id).first()
    if grant is None or grant.revoked_at is None or grant.ended_by not in WITHDRAWN_BY:
        return None
    received = AccessLogEntry.objects.filter(
        customer_id=grant.customer_id,
        partner_id=grant.grantee_id,
        purposes__contains=[grant.purpose],
    ).exists()
    if not received:
        return None
    with transaction.atomic():
        notices = RecipientNotice.objects.for_partner(grant.grantee).select_related("partner")
        notice, created = notices.get_or_create(
            kind=Kind.REVOCATION,
            grant=grant,
            partner_id=grant.grantee_id,
            defaults={
                "customer_id": grant.customer_id,
                "purpose": grant.purpose,
                "occurred_at": grant.revoked_at,
            },
        )
        if created:
            ledger_append_many([_ledger_row(notice)])
            if grant.ended_by == ConsentGrant.Ended.PARTNER:
                # The grantee relayed this withdrawal itself: that call is its acknowledgement.
                return notice_acknowledge(notice=notice, via=Via.API, at=grant.revoked_at)
        if notice.acknowledged_at is None:
            _send(notice)
    return notice


def notices_capture_for_erasure(
    *, customer_id: uuid.UUID, erased_at: datetime | None = None
) -> list[RecipientNotice]:
    """Inside the erasure transaction, before the access log goes: a notice for every partner
    that read the customer's data. Nothing is sent yet (that waits for the commit). Returns the
    notices, each with its partner: the erasure's receipt names exactly these recipients."""
    recipients = (
        Partner.objects.unscoped("every partner that read the customer's data, whoever it is")
        .filter(pk__in=AccessLogEntry.objects.filter(customer_id=customer_id).values("partner_id"))
        .order_by("pk")
    )
    at = erased_at or timezone.now()
    notices = RecipientNotice.objects.bulk_create(
        RecipientNotice(customer_id=customer_id, partner=p, kind=Kind.ERASURE, occurred_at=at)
        for p in recipients
    )
    if not notices:
        return []
    ledger_append_many([_ledger_row(n) for n in notices])
    return notices


def notices_send_for_erasure(*, customer_id: uuid.UUID) -> int:
    """After the erasure commits: the webhook of each captured notice not sent yet."""
    if not Customer.objects.filter(pk=customer_id, erased_at__isnull=False).exists():
        return 0
    sent = 0
    erased = RecipientNotice.objects.unscoped("an erasure's notices go to every recipient")
    pending = erased.select_related("partner").filter(
        customer_id=customer_id,
        kind=Kind.ERASURE,
        sent_at__isnull=True,
        acknowledged_at__isnull=True,
    )
    for notice in pending:
        with transaction.atomic():
            sent += _send(notice) is not None
    return sent


# --- acknowledging -----------------------------------------------------------------------------


def notice_acknowledge(
    *, notice: RecipientNotice, via: str, at: datetime | None = None
) -> RecipientNotice:
    """The recipient confirms it acted on the notice. The first acknowledgement stays; a second
    changes nothing. Returns the notice."""
    if via not in Via.values:
        raise ValueError(f"Unknown acknowledgement channel {via!r}.")
    with transaction.atomic():
        held = RecipientNotice.objects.unscoped("locks again the notice the caller holds")
        notice = held.select_for_update().get(pk=notice.pk)
        if notice.acknowledged_at is not None:
            return notice
        notice.acknowledged_at = at or timezone.now()
        notice.acknowledged_via = via
        notice.save(update_fields=["acknowledged_at", "acknowledged_via"])
        ledger_append(
            kind="notice.acknowledged",
            customer_ref=notice.customer_id,
            partner_ref=notice.partner_id,
            notice=str(notice.pk),
            notice_kind=notice.kind,
            via=via,
            delay_seconds=int(notice.acknowledgement_delay.total_seconds()),
        )
    return notice


def notice_acknowledge_by_webhook(
    *, partner_id: uuid.UUID, token: str, at: datetime | None = None
) -> RecipientNotice | None:
    """A receiver answered a notice's webhook with a valid signed acknowledgement. ``token`` is
    the notice id; a notice of another partner is not touched."""
    try:
        notice_id = uuid.UUID(str(token))
    except ValueError:
        return None
    signed_for = RecipientNotice.objects.unscoped("restricted to the partner id that signed it")
    notice = signed_for.filter(pk=notice_id, partner_id=partner_id).first()
    if notice is None:
        return None
    return notice_acknowledge(notice=notice, via=Via.WEBHOOK, at=at)


# --- chasing -----------------------------------------------------------------------------------


def _due(now):
    """Unacknowledged notices whose next reminder is due, as one condition."""
    due = Q()
    last = len(CHASE_PAUSES) - 1
    for count, pause in enumerate(CHASE_PAUSES):
        since = "created_at" if count == 0 else "last_chased_at"
        counted = Q(chase_count=count) if count < last else Q(chase_count__gte=count)
        due |= counted & Q(**{f"{since}__lte": now - pause})
    return due


def _catch_up(now):
    """Notices for recent withdrawals that should have one and have none."""
    missing = (
        ConsentGrant.objects.unscoped("the sweep works for every grantee")
        .filter(
            revoked_at__gte=now - CATCH_UP_WINDOW,
            revoked_at__lte=now - CATCH_UP_SETTLE,
            ended_by__in=WITHDRAWN_BY,
        )
        .filter(
            Exists(
                AccessLogEntry.objects.filter(
                    customer_id=OuterRef("customer_id"),
                    partner_id=OuterRef("grantee_id"),
                    purposes__contains=[OuterRef("purpose")],
                )
            )
        )
        .exclude(
            Exists(
                RecipientNotice.objects.unscoped("whether the outer grant has its notice").filter(
                    grant_id=OuterRef("pk")
                )
            )
        )
        .values_list("pk", flat=True)[:CHASE_BATCH]
    )
    return sum(notices_for_revocation(grant_id=pk) is not None for pk in list(missing))


def notices_chase(*, now: datetime | None = None) -> int:
    """Remind every recipient whose notice is unacknowledged and due: a new webhook event (its
    own dedupe key per reminder) and one more in ``chase_count``. Recipients that are not active
    are not chased. Returns how many were reminded."""
    now = now or timezone.now()
    _catch_up(now)
    with transaction.atomic():
        due = list(
            RecipientNotice.objects.unscoped("the sweep works for every partner's notices")
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("partner")
            .filter(acknowledged_at__isnull=True, partner__status=Partner.Status.ACTIVE)
            .filter(_due(now))
            .order_by("created_at")[:CHASE_BATCH]
        )
        for notice in due:
            notice.chase_count += 1
            notice.last_chased_at = now
            notice.save(update_fields=["chase_count", "last_chased_at"])
            event = _emit(notice, reminder=notice.chase_count)
            if event is not None and notice.sent_at is None:
                notice.sent_at = event.created_at
                notice.save(update_fields=["sent_at"])
    return len(due)


# --- reading -----------------------------------------------------------------------------------


def partner_notices(
    *, partner: Partner, acknowledged: bool | None = None
) -> QuerySet[RecipientNotice]:
    """The notices addressed to ``partner``, newest first; optionally only (un)acknowledged."""
    notices = RecipientNotice.objects.for_partner(partner)
    if acknowledged is not None:
        notices = notices.filter(acknowledged_at__isnull=not acknowledged)
    return notices


def describe_delay(delay: timedelta) -> str:
    """ "3 min", "2 h 5 min", "3 days" — how long a recipient took."""
    seconds = int(delay.total_seconds())
    if seconds < 60:
        return "under a minute"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def recipient_status(notice: RecipientNotice) -> dict[str, Any]:
    """One recipient's state, for the customer: who, whether and when they confirmed."""
    confirmed = notice.acknowledged_at is not None
    return {
        "partner": notice.partner.name,
        "confirmed": confirmed,
        "confirmed_at": notice.acknowledged_at,
        "after": describe_delay(notice.acknowledgement_delay) if confirmed else None,
        "asked": 1 + notice.chase_count,
    }


def customer_withdrawals(*, customer: Customer) -> list[dict[str, Any]]:
    """The customer's withdrawals, newest first, each with what its recipients said."""
    grants = (
        ConsentGrant.objects.unscoped("the customer's own withdrawals, from every partner")
        .filter(customer=customer, ended_by__in=WITHDRAWN_BY)
        .select_related("grantee")
        .order_by("-revoked_at")
    )
    notices = {}
    for notice in (
        RecipientNotice.objects.unscoped("what each recipient of the customer's withdrawals said")
        .filter(customer=customer, kind=Kind.REVOCATION)
        .select_related("partner")
        .order_by("partner__name")
    ):
        notices.setdefault(notice.grant_id, []).append(recipient_status(notice))
    return [
        {
            "grant": g,
            "purpose_label": PURPOSES[g.purpose].label if g.purpose in PURPOSES else g.purpose,
            "recipients": notices.get(g.pk, []),
        }
        for g in grants
    ]


def customer_erasure_recipients(*, customer: Customer) -> list[dict[str, Any]]:
    """What each recipient of an erased customer's data said, by name."""
    return [
        recipient_status(n)
        for n in RecipientNotice.objects.unscoped("what each recipient of the erasure said")
        .filter(customer=customer, kind=Kind.ERASURE)
        .select_related("partner")
        .order_by("partner__name")
    ]
