"""Webhooks about discrepancies, with each party's own projection of the evidence.

Only parties with an endpoint subscribed to the event hear about it, and only about the
discrepancies they may see (the same decision as the queue); a run that opens thousands of
findings for a party without webhooks costs one query. The event names the discrepancy; what
it says is built when it is sent (``discrepancy_data``), through the queue's decision then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from clearinghouse.records.announce import uuids
from partners.models import Partner
from partners.webhooks import payload_builder, webhook_emit, webhook_subscribed

from .models import Discrepancy
from .selectors import discrepancies_shown, discrepancies_visible, discrepancy_evidence

OPENED, UPDATED = "discrepancy.opened", "discrepancy.updated"


@payload_builder(OPENED, UPDATED)
def discrepancy_data(
    *, partner: Partner, subject: dict, channel: str, request_id: str = ""
) -> dict | None:
    """The discrepancy an event names as ``partner`` sees it now, or None when it may not."""
    found = discrepancies_visible(partner=partner).filter(
        pk__in=uuids([subject.get("discrepancy")])
    )
    shown = discrepancies_shown(partner=partner, discrepancies=found)
    if not shown:
        return None
    discrepancy = shown[0]
    evidence = discrepancy_evidence(
        partner=partner, discrepancy=discrepancy, channel=channel, request_id=request_id
    )
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
    }


def anybody_listens(parties: Iterable[Partner]) -> bool:
    """Whether any of ``parties`` subscribes to a discrepancy event (a run nobody listens to
    keeps no outbox)."""
    return any(
        webhook_subscribed(partner=partner, event_type=event_type)
        for partner in parties
        for event_type in (OPENED, UPDATED)
    )


def _emit(
    ids: Sequence[str | UUID],
    event_type: str,
    chunk: int = 500,
    parties: Iterable[UUID] | None = None,
) -> None:
    """Look at the discrepancies only for parties that subscribed, a chunk at a time: a full run
    may open hundreds of thousands of findings. ``parties``: the partners the discrepancies can
    concern, when the caller knows them (a run knows its pair), so that nobody reads the ids."""
    if parties is None:
        pairs = (
            Discrepancy.objects.unscoped("the parties of the findings a run gave, by id")
            .filter(pk__in=ids)
            .values_list("manufacturer_id", "retailer_id")
            .distinct()
        )
        parties = {p for pair in pairs for p in pair if p is not None}
    party_ids = set(parties)
    named = Partner.objects.unscoped("the parties of these findings, asked whether they listen")
    for partner in named.filter(pk__in=party_ids):
        if not webhook_subscribed(partner=partner, event_type=event_type):
            continue
        for start in range(0, len(ids), chunk):
            page = discrepancies_visible(partner=partner).filter(pk__in=ids[start : start + chunk])
            for pk, updated_at in page.values_list("pk", "updated_at"):
                webhook_emit(
                    partner=partner,
                    event_type=event_type,
                    subject={"discrepancy": str(pk)},
                    dedupe_key=f"{event_type}:{pk}:{updated_at.isoformat()}",
                )


def discrepancies_opened(ids: Sequence[str | UUID], parties: Iterable[UUID] | None = None) -> None:
    """Tell each party that listens of the discrepancies a run opened (by id)."""
    _emit(ids, OPENED, parties=parties)


def discrepancies_updated(ids: Sequence[str | UUID], parties: Iterable[UUID] | None = None) -> None:
    """Tell each party that listens of the discrepancies a run resolved or a party worked."""
    _emit(ids, UPDATED, parties=parties)
