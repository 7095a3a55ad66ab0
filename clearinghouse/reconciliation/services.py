"""Writes on the discrepancy queue: resolve, dismiss, reopen, comment — by either party,
recorded with who, when and why, and announced to both parties after commit."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clearinghouse.records.gtin import normalise_gtin
from partners.models import ApiCredential, Partner, User
from partners.services import partner_event_record

from .models import Discrepancy, DiscrepancyNote, WarrantyTerms

TRANSITIONS = {
    "resolve": (
        Discrepancy.Status.OPEN,
        Discrepancy.Status.RESOLVED,
        DiscrepancyNote.Action.RESOLVED,
    ),
    "dismiss": (
        Discrepancy.Status.OPEN,
        Discrepancy.Status.DISMISSED,
        DiscrepancyNote.Action.DISMISSED,
    ),
    "reopen": (None, Discrepancy.Status.OPEN, DiscrepancyNote.Action.REOPENED),
}


def _check_party(discrepancy: Discrepancy, partner: Partner) -> None:
    if partner.pk not in (discrepancy.manufacturer_id, discrepancy.retailer_id):
        raise ValidationError("Only the parties to a discrepancy can work it.")


def _clean_text(text: str | None, *, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationError({"reason": "Say why, so that the other party understands."})
    if len(text) > 2000:
        raise ValidationError({"reason": "Keep it under 2000 characters."})
    return text


class WrongState(ValidationError):
    """The discrepancy is not in the state the action starts from (the API answers 409)."""


@transaction.atomic
def discrepancy_transition(
    *,
    discrepancy: Discrepancy,
    action: str,
    partner: Partner,
    reason: str,
    user: User | None = None,
    credential: ApiCredential | None = None,
) -> Discrepancy:
    """resolve / dismiss an open discrepancy, or reopen a closed one, with a reason."""
    if action not in TRANSITIONS:
        raise ValidationError({"action": "Use resolve, dismiss or reopen."})
    _check_party(discrepancy, partner)
    discrepancy = (
        Discrepancy.objects.for_partner(partner).select_for_update().get(pk=discrepancy.pk)
    )
    reason = _clean_text(reason, required=True)
    source, target, note_action = TRANSITIONS[action]
    if source is not None and discrepancy.status != source:
        raise WrongState({"status": f"The discrepancy is {discrepancy.status}, not {source}."})
    if source is None and discrepancy.status == Discrepancy.Status.OPEN:
        raise WrongState({"status": "The discrepancy is already open."})
    discrepancy.status = target
    discrepancy.updated_at = timezone.now()
    discrepancy.save(update_fields=["status", "updated_at"])
    DiscrepancyNote.objects.create(
        discrepancy=discrepancy,
        action=note_action,
        partner=partner,
        user=user,
        credential=credential,
        text=reason,
    )
    _announce(discrepancy)
    return discrepancy


@transaction.atomic
def discrepancy_comment(
    *,
    discrepancy: Discrepancy,
    partner: Partner,
    text: str,
    user: User | None = None,
    credential: ApiCredential | None = None,
) -> DiscrepancyNote:
    """A party's comment on a discrepancy (its status stays), announced to both parties."""
    _check_party(discrepancy, partner)
    text = _clean_text(text, required=True)
    note = DiscrepancyNote.objects.create(
        discrepancy=discrepancy,
        action=DiscrepancyNote.Action.COMMENT,
        partner=partner,
        user=user,
        credential=credential,
        text=text,
    )
    Discrepancy.objects.for_partner(partner).filter(pk=discrepancy.pk).update(
        updated_at=timezone.now()
    )
    _announce(discrepancy)
    return note


def _announce(discrepancy: Discrepancy) -> None:
    discrepancy_id = str(discrepancy.pk)

    def send():
        from .notify import discrepancies_updated

        discrepancies_updated([discrepancy_id])

    transaction.on_commit(send, robust=True)


def warranty_terms_set(
    *,
    manufacturer: Partner,
    gtin: str,
    model_name: str,
    warranty_months: int,
    actor: User | None = None,
    credential: ApiCredential | None = None,
) -> WarrantyTerms:
    """Set the warranty period of one of the manufacturer's product models (a GTIN, in any of
    its 8-, 12-, 13- or 14-digit forms). Returns the terms. The next run of each of the
    manufacturer's pairs re-evaluates every claim against them."""
    if manufacturer.kind != Partner.Kind.MANUFACTURER:
        raise ValidationError("Only a manufacturer sets warranty terms for its product models.")
    try:
        gtin = normalise_gtin(gtin)
    except ValueError as exc:
        raise ValidationError({"gtin": f"The GTIN {exc}."}) from None
    model_name = (model_name or "").strip()
    if not model_name or len(model_name) > 100:
        raise ValidationError({"model_name": "Name the product model (up to 100 characters)."})
    if not isinstance(warranty_months, int) or not 1 <= warranty_months <= WarrantyTerms.MAX_MONTHS:
        raise ValidationError(
            {"warranty_months": f"A whole number of months, 1 to {WarrantyTerms.MAX_MONTHS}."}
        )
    terms, created = WarrantyTerms.objects.for_partner(manufacturer).update_or_create(
        manufacturer=manufacturer,
        gtin=gtin,
        defaults={
            "model_name": model_name,
            "warranty_months": warranty_months,
            "updated_at": timezone.now(),
        },
    )
    partner_event_record(
        partner=manufacturer,
        action="warranty_terms.set",
        actor=actor,
        credential=credential,
        gtin=gtin,
        model_name=model_name,
        warranty_months=warranty_months,
        created=created,
    )
    return terms


def warranty_terms_delete(
    *, terms: WarrantyTerms, actor: User | None = None, credential: ApiCredential | None = None
) -> None:
    """Remove a product model's terms: its claims fall back to the default period."""
    terms.delete()
    partner_event_record(
        partner=terms.manufacturer,
        action="warranty_terms.deleted",
        actor=actor,
        credential=credential,
        gtin=terms.gtin,
        model_name=terms.model_name,
    )


# A pair in force runs every few minutes and clears its findings' erased customers itself
# (``engine.findings.forget_erased``); a pair that no longer runs (agreement suspended or ended, a
# partner suspended) never will. A day gives the running pairs time to use the customer first:
# their next run finds the erased customer's units by it.
FORGET_ERASED_AFTER = timedelta(days=1)


def findings_forget_erased(*, now: datetime | None = None) -> int:
    """No finding of any pair keeps naming a customer erased more than a day ago; the nightly
    beat calls this for the pairs that no longer run. Returns how many findings it cleared."""
    cutoff = (now or timezone.now()) - FORGET_ERASED_AFTER
    findings = Discrepancy.objects.unscoped("erasure reaches every partner's findings of them")
    return findings.filter(customer__erased_at__lt=cutoff).update(customer=None)
