"""Consent grants: giving, withdrawing and the expiry sweep. Each change appends its ledger
entry and signs its receipt in the transaction of the change, and its signal goes out once that
transaction commits."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from partners.models import Partner

from ..catalogue import validate_categories, validate_purpose
from ..ledger import ledger_append, ledger_append_many
from ..models import ConsentGrant, Customer, Receipt
from ..signals import consent_granted, consent_revoked
from .receipts import receipt_issue


class DuplicateGrant(ValidationError):
    """The same consent is already active: nothing was stored."""


def _validate_evidence(evidence: object) -> None:
    required = {"channel", "text_shown", "collected_at"}
    if not isinstance(evidence, dict) or not required <= set(evidence):
        raise ValidationError(
            {
                "evidence": "A partner-collected consent needs evidence: channel, text_shown, collected_at."
            }
        )


@transaction.atomic
def consent_grant(
    *,
    customer: Customer,
    grantee: Partner,
    purpose: str,
    source: str,
    categories: Iterable[str] | None = None,
    policy_version: int | None = None,
    collected_by: Partner | None = None,
    evidence: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> ConsentGrant:
    """Record a consent grant, its ledger entry and its signed receipt.

    An identical active grant is a ``DuplicateGrant``; any other open grant for the same
    customer, grantee and purpose is superseded (ended) by the new one.
    """
    spec = validate_purpose(purpose)
    categories = validate_categories(categories or spec.default_categories)
    version = policy_version or spec.current_version
    if version not in spec.policies:
        raise ValidationError(
            {"policy_version": f"Purpose {purpose!r} has no policy version {version}."}
        )
    if source not in ConsentGrant.Source.values:
        raise ValidationError({"source": "Unknown source."})
    if source == ConsentGrant.Source.PARTNER:
        _validate_evidence(evidence)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError({"expires_at": "The expiry is in the past: nothing to grant."})
    if grantee.status != Partner.Status.ACTIVE:
        raise ValidationError({"grantee": "Consent can only be given to an active partner."})
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    if customer.is_erased:
        raise ValidationError("This customer was erased.")
    existing = (
        ConsentGrant.objects.for_partner(grantee)
        .select_for_update(no_key=True)
        .filter(customer=customer, grantee=grantee, purpose=purpose, revoked_at__isnull=True)
        .first()
    )
    if existing is not None:
        if (
            existing.is_active(now)
            and sorted(existing.categories) == categories
            and existing.policy_version == version
            and existing.expires_at == expires_at
        ):
            raise DuplicateGrant("This consent is already active.", code="duplicate")
        grant_end(grant=existing, ended_by=ConsentGrant.Ended.SUPERSEDED, now=now, receipt=False)
    grant = ConsentGrant.objects.create(
        customer=customer,
        grantee=grantee,
        purpose=purpose,
        categories=categories,
        policy_version=version,
        source=source,
        collected_by=collected_by,
        evidence=evidence or {},
        granted_at=now,
        expires_at=expires_at,
    )
    ledger_append(
        kind="consent.granted",
        customer_ref=customer.pk,
        partner_ref=grantee.pk,
        consent=str(grant.pk),
        purpose=purpose,
        categories=categories,
        policy_version=version,
        source=source,
        collected_by=str(collected_by.pk) if collected_by else None,
        expires_at=expires_at.isoformat() if expires_at else None,
        supersedes=str(existing.pk) if existing else None,
    )
    grant.receipt = receipt_issue(customer=customer, kind=Receipt.Kind.GRANT, grant=grant)
    _tell_after_commit(consent_granted, grant)
    return grant


def _tell_after_commit(signal: Signal, grant: ConsentGrant) -> None:
    """Send ``signal`` about ``grant`` once the transaction commits."""
    grant_id, customer_id, grantee_id = grant.pk, grant.customer_id, grant.grantee_id
    transaction.on_commit(
        lambda: signal.send(
            sender=ConsentGrant, grant_id=grant_id, customer_id=customer_id, grantee_id=grantee_id
        ),
        robust=True,
    )


def grant_end(
    *, grant: ConsentGrant, ended_by: str, now: datetime, receipt: bool = True
) -> ConsentGrant:
    """End an open grant the caller holds locked, in the caller's transaction: its ledger
    entry, its receipt (unless ``receipt`` is False: a superseded grant's successor and an
    erasure carry their own) and, after the commit, ``consent_revoked``."""
    grant.revoked_at = now
    grant.ended_by = ended_by
    grant.save(update_fields=["revoked_at", "ended_by"])
    ledger_append(
        kind="consent.revoked",
        customer_ref=grant.customer_id,
        partner_ref=grant.grantee_id,
        consent=str(grant.pk),
        purpose=grant.purpose,
        ended_by=ended_by,
    )
    if receipt:
        grant.receipt = receipt_issue(
            customer=grant.customer, kind=Receipt.Kind.REVOKE, grant=grant
        )
    _tell_after_commit(consent_revoked, grant)
    return grant


@transaction.atomic
def consent_revoke(
    *, grant: ConsentGrant, ended_by: str = ConsentGrant.Ended.CUSTOMER
) -> ConsentGrant:
    """End a grant now: the very next read by the grantee no longer sees the data. Revoking an
    ended grant is harmless."""
    # Only the grant's row, and FOR NO KEY UPDATE: a plain FOR UPDATE through select_related
    # also locked the customer and the partner rows against the foreign-key checks of every
    # concurrent read's access log, and deadlocked with them under load. (The customer locks
    # below are NO KEY for the same reason.)
    grant = (
        ConsentGrant.objects.unscoped("locks again the grant the caller holds")
        .select_for_update(of=("self",), no_key=True)
        .select_related("grantee", "customer")
        .get(pk=grant.pk)
    )
    if grant.revoked_at is not None:
        return grant
    return grant_end(grant=grant, ended_by=ended_by, now=timezone.now())


@transaction.atomic
def consent_record_expiries() -> int:
    """Write a ledger entry for every grant whose expiry has passed (the expiry itself took
    effect at its time: the consent check compares with now)."""
    now = timezone.now()
    every_partners = ConsentGrant.objects.unscoped("the beat records every partner's expiries")
    expired = list(
        every_partners.select_for_update(skip_locked=True).filter(
            revoked_at__isnull=True, expiry_recorded_at__isnull=True, expires_at__lte=now
        )[:1000]
    )
    if not expired:
        return 0
    ledger_append_many(
        [
            (
                "consent.expired",
                g.customer_id,
                g.grantee_id,
                {
                    "consent": str(g.pk),
                    "purpose": g.purpose,
                    "expired_at": g.expires_at.isoformat(),
                },
            )
            for g in expired
        ]
    )
    every_partners.filter(pk__in=[g.pk for g in expired]).update(expiry_recorded_at=now)
    return len(expired)
