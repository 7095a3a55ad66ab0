"""Writes for sharing agreements.

Every service locks the agreement row, checks that the acting partner is a party and active and
that the step is allowed in the agreement's current state, writes the change, and records it as
an ``AgreementEvent`` (seen by both parties) and a ``PartnerEvent`` of the acting partner (its
Activity page), all in one transaction. Anything refused raises ``ValidationError`` and changes
nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from ..models import (
    AgreementEvent,
    AgreementVersion,
    Membership,
    Partner,
    SharingAgreement,
    User,
)
from ..services import partner_event_record
from .clauses import clauses_normalise

Status = SharingAgreement.Status
VersionStatus = AgreementVersion.Status
REASON_MAX = 500


def _record(*, agreement, version, partner, actor, action, **detail):
    """The agreement's history entry and the acting partner's audit entry, together."""
    counterpart = agreement.counterpart_of(partner)
    if version is not None:
        detail = {"version": version.number, **detail}
    AgreementEvent.objects.create(
        agreement=agreement,
        version=version,
        partner=partner,
        actor=actor,
        action=action,
        detail=detail,
    )
    partner_event_record(
        partner=partner,
        action=action,
        actor=actor,
        agreement=str(agreement.pk),
        counterpart=counterpart.name,
        **detail,
    )


def _fresh_partners(*partners):
    """The partners as the database holds them now (a stale object may hide a suspension)."""
    parties = Partner.objects.unscoped("the service re-reads the status of both parties")
    found = parties.in_bulk([p.pk for p in partners])
    return [found[p.pk] for p in partners]


def _ensure_active(*partners):
    for partner in partners:
        if not partner.is_active:
            raise ValidationError(
                f"{partner.name} is {partner.get_status_display().lower()}; only active partners "
                "take part in sharing agreements."
            )


def _ensure_acts_for(actor, partner):
    if actor is None:
        return
    if not Membership.objects.for_partner(partner).filter(user=actor).exists():
        raise ValidationError(f"{actor} does not act for {partner.name}.")


def _clean_reason(reason):
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX} characters."})
    return reason


def _locked(agreement_id, partner):
    """The agreement, locked for the rest of the transaction; refused unless ``partner`` is a
    party (a foreign agreement looks exactly like a missing one)."""
    agreement = (
        SharingAgreement.objects.for_partner(partner)
        .select_for_update(of=("self",))
        .select_related("manufacturer", "retailer")
        .filter(pk=agreement_id)
        .first()
    )
    if agreement is None:
        raise ValidationError("No such agreement.")
    agreement.manufacturer, agreement.retailer = _fresh_partners(
        agreement.manufacturer, agreement.retailer
    )
    return agreement


def _party(agreement, partner):
    """The acting partner as loaded with the agreement (fresh status)."""
    return agreement.manufacturer if partner.pk == agreement.manufacturer_id else agreement.retailer


def _version(agreement, version):
    return agreement.versions.get(pk=version.pk)


def _close_version(version, status, now):
    version.status = status
    version.closed_at = now
    version.save(update_fields=["status", "closed_at"])


def _open_agreement(manufacturer, retailer, proposer, retry=True):
    """The pair's agreement that is not terminated, locked, creating it if there is none."""
    existing = (
        SharingAgreement.objects.for_partner(proposer)
        .select_for_update(of=("self",))
        .filter(manufacturer=manufacturer, retailer=retailer)
        .exclude(status=Status.TERMINATED)
        .first()
    )
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():  # a savepoint: another first proposal may win the race
            created = SharingAgreement.objects.create(manufacturer=manufacturer, retailer=retailer)
    except IntegrityError:
        if not retry:
            raise
        # The concurrent proposal committed the pair's agreement first: propose a new version of it.
        return _open_agreement(manufacturer, retailer, proposer, retry=False)
    return created, True


@transaction.atomic
def agreement_propose(
    *,
    proposer: Partner,
    counterpart: Partner,
    clauses: list[dict[str, Any]],
    actor: User | None,
    note: str = "",
    purchase_points: str = "one",
) -> AgreementVersion:
    """Propose terms to ``counterpart``: the clauses, and who credits loyalty points for a
    purchase (``AgreementVersion.PurchasePoints``). Without an agreement between the pair that
    is not terminated, this creates the agreement and its version 1 (not in force); otherwise a
    new proposed version of that agreement, which withdraws any pending proposal (of either
    party) and leaves the active version in force until countersigned. Returns the new
    version."""
    clauses = clauses_normalise(clauses)
    if purchase_points not in AgreementVersion.PurchasePoints.values:
        raise ValidationError(
            {"purchase_points": "Say whether one programme or both credit a purchase."}
        )
    note = (note or "").strip()
    if len(note) > REASON_MAX:
        raise ValidationError({"note": f"Keep the note under {REASON_MAX} characters."})
    if proposer.pk == counterpart.pk:
        raise ValidationError({"counterpart": "An agreement needs another partner."})
    proposer, counterpart = _fresh_partners(proposer, counterpart)
    if {proposer.kind, counterpart.kind} != set(Partner.Kind.values):
        raise ValidationError(
            {"counterpart": "An agreement is between a manufacturer and a retailer."}
        )
    _ensure_active(proposer, counterpart)
    _ensure_acts_for(actor, proposer)
    manufacturer, retailer = (
        (proposer, counterpart)
        if proposer.kind == Partner.Kind.MANUFACTURER
        else (counterpart, proposer)
    )
    agreement, created = _open_agreement(manufacturer, retailer, proposer)
    agreement.manufacturer, agreement.retailer = manufacturer, retailer
    versions = list(
        agreement.versions.filter(status__in=[VersionStatus.ACTIVE, VersionStatus.PROPOSED])
    )
    active = next((v for v in versions if v.status == VersionStatus.ACTIVE), None)
    pending = next((v for v in versions if v.status == VersionStatus.PROPOSED), None)
    terms = (clauses, purchase_points)
    if active is not None and (active.clauses, active.purchase_points) == terms:
        raise ValidationError(
            {"clauses": "These are exactly the terms in force; change at least one."}
        )
    if pending is not None and (pending.clauses, pending.purchase_points) == terms:
        raise ValidationError(
            {
                "clauses": f"Version {pending.number}, awaiting countersignature, has exactly "
                "these terms."
            }
        )
    now = timezone.now()
    number = (agreement.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    if pending is not None:
        _close_version(pending, VersionStatus.WITHDRAWN, now)
        _record(
            agreement=agreement,
            version=pending,
            partner=proposer,
            actor=actor,
            action="agreement.withdrawn",
            replaced_by=number,
        )
    version = AgreementVersion.objects.create(
        agreement=agreement,
        number=number,
        clauses=clauses,
        purchase_points=purchase_points,
        note=note,
        proposed_by=proposer,
        proposed_by_user=actor,
        proposed_at=now,
    )
    _record(
        agreement=agreement,
        version=version,
        partner=proposer,
        actor=actor,
        action="agreement.proposed",
        clauses=len(clauses),
        new_agreement=created,
    )
    return version


@transaction.atomic
def agreement_countersign(
    *, version: AgreementVersion, partner: Partner, actor: User | None
) -> AgreementVersion:
    """The other party accepts a proposed version: it becomes the active version, the one it
    replaces is superseded, and the agreement is in force (a suspended agreement stays
    suspended, with the new terms ready for when it resumes). Returns the version."""
    agreement = _locked(version.agreement_id, partner)
    version = _version(agreement, version)
    if version.status != VersionStatus.PROPOSED:
        raise ValidationError(
            f"Version {version.number} is {version.get_status_display().lower()}, no longer "
            "awaiting countersignature."
        )
    if version.proposed_by_id == partner.pk:
        raise ValidationError(
            "The other party countersigns a proposal; its proposer cannot countersign it."
        )
    _ensure_active(agreement.manufacturer, agreement.retailer)
    _ensure_acts_for(actor, partner)
    now = timezone.now()
    previous = agreement.versions.filter(status=VersionStatus.ACTIVE).first()
    if previous is not None:
        _close_version(previous, VersionStatus.SUPERSEDED, now)
    version.status = VersionStatus.ACTIVE
    version.countersigned_by_user = actor
    version.countersigned_at = now
    version.save(update_fields=["status", "countersigned_by_user", "countersigned_at"])
    if agreement.status == Status.PROPOSED:
        agreement.status = Status.ACTIVE
        agreement.save(update_fields=["status"])
    _record(
        agreement=agreement,
        version=version,
        partner=_party(agreement, partner),
        actor=actor,
        action="agreement.countersigned",
        supersedes=previous.number if previous else None,
    )
    return version


def _end_proposal(*, version, partner, actor, by_proposer, status, action, reason=""):
    reason = _clean_reason(reason)
    agreement = _locked(version.agreement_id, partner)
    version = _version(agreement, version)
    if version.status != VersionStatus.PROPOSED:
        raise ValidationError(
            f"Version {version.number} is {version.get_status_display().lower()}, no longer "
            "awaiting countersignature."
        )
    if (version.proposed_by_id == partner.pk) != by_proposer:
        raise ValidationError(
            "Only its proposer can withdraw a proposal."
            if by_proposer
            else "The other party rejects a proposal; its proposer can withdraw it."
        )
    party = _party(agreement, partner)
    _ensure_active(party)
    _ensure_acts_for(actor, partner)
    _close_version(version, status, timezone.now())
    _record(
        agreement=agreement,
        version=version,
        partner=party,
        actor=actor,
        action=action,
        **({"reason": reason} if reason else {}),
    )
    return version


@transaction.atomic
def agreement_reject(
    *, version: AgreementVersion, partner: Partner, actor: User | None, reason: str = ""
) -> AgreementVersion:
    """The other party declines a proposed version; the version in force (if any) stays."""
    return _end_proposal(
        version=version,
        partner=partner,
        actor=actor,
        by_proposer=False,
        status=VersionStatus.REJECTED,
        action="agreement.rejected",
        reason=reason,
    )


@transaction.atomic
def agreement_withdraw(
    *, version: AgreementVersion, partner: Partner, actor: User | None
) -> AgreementVersion:
    """The proposer takes back its proposed version; the version in force (if any) stays."""
    return _end_proposal(
        version=version,
        partner=partner,
        actor=actor,
        by_proposer=True,
        status=VersionStatus.WITHDRAWN,
        action="agreement.withdrawn",
    )


def _acting(agreement, partner, actor):
    agreement = _locked(agreement.pk, partner)
    party = _party(agreement, partner)
    _ensure_active(party)
    _ensure_acts_for(actor, partner)
    return agreement, party


@transaction.atomic
def agreement_suspend(
    *, agreement: SharingAgreement, partner: Partner, actor: User | None, reason: str = ""
) -> SharingAgreement:
    """Either party stops an agreement in force from applying, at once, until the same party
    resumes it. Returns the agreement."""
    reason = _clean_reason(reason)
    agreement, party = _acting(agreement, partner, actor)
    if agreement.status != Status.ACTIVE:
        raise ValidationError(
            f"The agreement is {agreement.get_status_display().lower()}; only an agreement in "
            "force can be suspended."
        )
    agreement.status = Status.SUSPENDED
    agreement.suspended_by = party
    agreement.suspended_at = timezone.now()
    agreement.save(update_fields=["status", "suspended_by", "suspended_at"])
    _record(
        agreement=agreement,
        version=None,
        partner=party,
        actor=actor,
        action="agreement.suspended",
        reason=reason,
    )
    return agreement


@transaction.atomic
def agreement_resume(
    *, agreement: SharingAgreement, partner: Partner, actor: User | None
) -> SharingAgreement:
    """The party that suspended an agreement puts it back in force (with its active version,
    which may have changed while it was suspended). Returns the agreement."""
    agreement, party = _acting(agreement, partner, actor)
    if agreement.status != Status.SUSPENDED:
        raise ValidationError("The agreement is not suspended.")
    if agreement.suspended_by_id != party.pk:
        raise ValidationError(
            f"Only {agreement.counterpart_of(party).name}, which suspended the agreement, can "
            "resume it."
        )
    agreement.status = Status.ACTIVE
    agreement.suspended_by = None
    agreement.suspended_at = None
    agreement.save(update_fields=["status", "suspended_by", "suspended_at"])
    _record(
        agreement=agreement, version=None, partner=party, actor=actor, action="agreement.resumed"
    )
    return agreement


@transaction.atomic
def agreement_terminate(
    *, agreement: SharingAgreement, partner: Partner, actor: User | None, reason: str = ""
) -> SharingAgreement:
    """Either party ends the agreement for good: nothing is shared under it any more, a pending
    proposal is withdrawn, and the pair may start a new agreement. Returns the agreement."""
    reason = _clean_reason(reason)
    agreement, party = _acting(agreement, partner, actor)
    if agreement.status == Status.TERMINATED:
        raise ValidationError("The agreement is already terminated.")
    now = timezone.now()
    pending = agreement.versions.filter(status=VersionStatus.PROPOSED).first()
    if pending is not None:
        _close_version(pending, VersionStatus.WITHDRAWN, now)
    previous = agreement.status
    agreement.status = Status.TERMINATED
    agreement.suspended_by = None
    agreement.suspended_at = None
    agreement.terminated_by = party
    agreement.terminated_at = now
    agreement.save(
        update_fields=["status", "suspended_by", "suspended_at", "terminated_by", "terminated_at"]
    )
    _record(
        agreement=agreement,
        version=None,
        partner=party,
        actor=actor,
        action="agreement.terminated",
        reason=reason,
        previous=previous,
        withdrew_version=pending.number if pending else None,
    )
    return agreement
