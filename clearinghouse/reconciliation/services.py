"""Writes on the discrepancy queue: resolve, dismiss, reopen, comment — by either party,
recorded with who, when and why, and announced to both parties after commit."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import Discrepancy, DiscrepancyNote

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


def _check_party(discrepancy, partner):
    if partner.pk not in (discrepancy.manufacturer_id, discrepancy.retailer_id):
        raise ValidationError("Only the parties to a discrepancy can work it.")


def _clean_text(text, *, required):
    text = (text or "").strip()
    if required and not text:
        raise ValidationError({"reason": "Say why, so that the other party understands."})
    if len(text) > 2000:
        raise ValidationError({"reason": "Keep it under 2000 characters."})
    return text


@transaction.atomic
def discrepancy_transition(*, discrepancy, action, partner, reason, user=None, credential=None):
    """resolve / dismiss an open discrepancy, or reopen a closed one, with a reason."""
    if action not in TRANSITIONS:
        raise ValidationError({"action": "Use resolve, dismiss or reopen."})
    discrepancy = Discrepancy.objects.select_for_update().get(pk=discrepancy.pk)
    _check_party(discrepancy, partner)
    reason = _clean_text(reason, required=True)
    source, target, note_action = TRANSITIONS[action]
    if source is not None and discrepancy.status != source:
        raise ValidationError({"status": f"The discrepancy is {discrepancy.status}, not {source}."})
    if source is None and discrepancy.status == Discrepancy.Status.OPEN:
        raise ValidationError({"status": "The discrepancy is already open."})
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
def discrepancy_comment(*, discrepancy, partner, text, user=None, credential=None):
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
    Discrepancy.objects.filter(pk=discrepancy.pk).update(updated_at=timezone.now())
    _announce(discrepancy)
    return note


def _announce(discrepancy):
    discrepancy_id = str(discrepancy.pk)

    def send():
        from .notify import discrepancies_updated

        discrepancies_updated([discrepancy_id])

    transaction.on_commit(send, robust=True)
