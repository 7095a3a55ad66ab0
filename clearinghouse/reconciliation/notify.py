"""Webhooks about discrepancies, with each party's own projection of the evidence.

Only parties with an endpoint subscribed to the event hear about it, and only about the
discrepancies they may see (the same decision as the queue); a run that opens thousands of
findings for a party without webhooks costs one query.
"""

from partners.models import Partner
from partners.webhooks import webhook_emit, webhook_subscribed

from .models import Discrepancy
from .selectors import discrepancies_shown, discrepancies_visible, discrepancy_evidence


def _payload(partner, discrepancy):
    """The discrepancy as ``partner`` sees it (``discrepancies_shown`` has run on it), and the
    refs of the records it shows."""
    evidence = discrepancy_evidence(partner=partner, discrepancy=discrepancy, channel="webhook")
    return {
        "id": str(discrepancy.pk),
        "kind": discrepancy.kind,
        "severity": discrepancy.severity,
        "status": discrepancy.status,
        "product": discrepancy.shown_product,
        "detail": discrepancy.shown_detail,
        "evidence": [
            {
                k: v
                for k, v in item.items()
                if k in ("ref", "kind", "role", "occurred_at", "recorded_by")
            }
            for item in evidence
        ],
    }, [item["ref"] for item in evidence]


OPENED, UPDATED = "discrepancy.opened", "discrepancy.updated"


def anybody_listens(parties):
    """Whether any of ``parties`` subscribes to a discrepancy event (a run nobody listens to
    keeps no outbox)."""
    return any(
        webhook_subscribed(partner=partner, event_type=event_type)
        for partner in parties
        for event_type in (OPENED, UPDATED)
    )


def _emit(ids, event_type, chunk=500, parties=None):
    """Look at the discrepancies only for parties that subscribed, a chunk at a time: a full run
    may open hundreds of thousands of findings. ``parties``: the partners the discrepancies can
    concern, when the caller knows them (a run knows its pair), so that nobody reads the ids."""
    if parties is None:
        pairs = (
            Discrepancy.objects.unscoped()
            .filter(pk__in=ids)
            .values_list("manufacturer_id", "retailer_id")
            .distinct()
        )
        parties = {p for pair in pairs for p in pair if p is not None}
    party_ids = set(parties)
    # Unscoped on purpose: the parties of these discrepancies, to ask whether they listen.
    for partner in Partner.objects.unscoped().filter(pk__in=party_ids):
        if not webhook_subscribed(partner=partner, event_type=event_type):
            continue
        for start in range(0, len(ids), chunk):
            page = discrepancies_visible(partner=partner).filter(pk__in=ids[start : start + chunk])
            for discrepancy in discrepancies_shown(partner=partner, discrepancies=page):
                data, refs = _payload(partner, discrepancy)
                webhook_emit(
                    partner=partner,
                    event_type=event_type,
                    data=data,
                    records=refs,
                    dedupe_key=f"{event_type}:{discrepancy.pk}:{discrepancy.updated_at.isoformat()}",
                )


def discrepancies_opened(ids, parties=None):
    _emit(ids, OPENED, parties=parties)


def discrepancies_updated(ids, parties=None):
    _emit(ids, UPDATED, parties=parties)
