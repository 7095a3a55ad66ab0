"""``record.shared`` webhooks: after a partner's ingest commits, each counterpart that listens
hears about the new records it may see, projected for it, a few hundred per event.

Only records that arrive are announced. Records that become visible later (a consent given, an
agreement countersigned) are not replayed one by one: the counterpart reads them through the
API, where the visibility decision applies at the moment of the read.
"""

import logging

from partners.agreements.selectors import pairs_in_force
from partners.models import Partner
from partners.webhooks import webhook_emit, webhook_subscribed

from .visibility import read, visible_records

logger = logging.getLogger(__name__)
EVENT = "record.shared"
PER_EVENT = 200


def listening_counterparts(partner):
    """The partners with an agreement in force with ``partner`` that subscribe to the event."""
    ids = {other for pair in pairs_in_force(partner=partner) for other in pair} - {partner.pk}
    # Unscoped on purpose: the counterparts of this partner, to ask whether they listen.
    return [
        other
        for other in Partner.objects.unscoped().filter(pk__in=ids)
        if webhook_subscribed(partner=other, event_type=EVENT)
    ]


def announce_after_ingest(partner, refs):
    """After an ingest commits: hand the new records to a worker, when anybody listens."""
    from .tasks import announce_shared

    if not refs:
        return
    try:
        if listening_counterparts(partner):
            announce_shared.delay(str(partner.pk), [str(ref) for ref in refs])
    except Exception:  # Redis away: the counterpart still reads the records over the API
        logger.warning("could not enqueue record.shared webhooks", exc_info=True)


def records_announce(*, submitter, refs):
    """Emit ``record.shared`` to every listening counterpart for the records of ``refs`` it may
    see now. Idempotent: a repeated call stores no second event (dedupe per chunk)."""
    events = 0
    for counterpart in listening_counterparts(submitter):
        visible = visible_records(partner=counterpart).filter(
            submitted_by_id=submitter.pk, ref__in=refs
        )
        rows = list(visible.queryset.select_related("submitted_by").order_by("id"))
        for start in range(0, len(rows), PER_EVENT):
            chunk = rows[start : start + PER_EVENT]
            projected = read(chunk, visible, channel="webhook")
            webhook_emit(
                partner=counterpart,
                event_type=EVENT,
                data={"recorded_by": submitter.slug, "records": projected},
                records=[row.ref for row in chunk],
                dedupe_key=f"{EVENT}:{chunk[0].ref}:{chunk[-1].ref}:{len(chunk)}",
            )
            events += 1
    return events
