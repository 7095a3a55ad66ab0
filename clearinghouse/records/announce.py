"""``record.shared`` webhooks: each counterpart that listens hears about the records it may see,
projected for it, a few hundred per event:

* after a partner's ingest commits, the new records (``reason``: ``recorded``);
* after a customer gives a partner consent, the customer's earlier records of that partner's
  counterparts that the consent alone lets it see now (``reason``: ``consent_given``).

Records that become visible by an agreement countersigned or amended are not replayed one by
one (a whole book of records): the counterpart reads them through the API, where the visibility
decision applies at the moment of the read.
"""

import logging

from partners.agreements.selectors import pairs_in_force
from partners.models import Partner
from partners.record_kinds import KINDS
from partners.webhooks import webhook_emit, webhook_subscribed

from .visibility import read, visible_records

logger = logging.getLogger(__name__)
EVENT = "record.shared"
PER_EVENT = 200


def _counterparts(partner):
    return {other for pair in pairs_in_force(partner=partner) for other in pair} - {partner.pk}


def listening_counterparts(partner):
    """The partners with an agreement in force with ``partner`` that subscribe to the event."""
    ids = _counterparts(partner)
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


def _emit(partner, visible, rows, *, reason, key):
    """One event per submitter and chunk of ``rows`` (visible to ``partner`` through
    ``visible``), projected for it; ``key`` makes each chunk's event once only."""
    events = 0
    by_submitter = {}
    for row in rows:
        by_submitter.setdefault(row.submitted_by, []).append(row)
    for submitter, of_submitter in by_submitter.items():
        for start in range(0, len(of_submitter), PER_EVENT):
            chunk = of_submitter[start : start + PER_EVENT]
            projected = read(chunk, visible, channel="webhook")
            webhook_emit(
                partner=partner,
                event_type=EVENT,
                data={"recorded_by": submitter.slug, "reason": reason, "records": projected},
                records=[row.ref for row in chunk],
                dedupe_key=f"{EVENT}:{key}{chunk[0].ref}:{chunk[-1].ref}:{len(chunk)}",
            )
            events += 1
    return events


def records_announce(*, submitter, refs):
    """Emit ``record.shared`` to every listening counterpart for the records of ``refs`` it may
    see now. Idempotent: a repeated call stores no second event (dedupe per chunk)."""
    events = 0
    for counterpart in listening_counterparts(submitter):
        visible = visible_records(partner=counterpart).filter(
            submitted_by_id=submitter.pk, ref__in=refs
        )
        rows = list(visible.queryset.select_related("submitted_by").order_by("id"))
        events += _emit(counterpart, visible, rows, reason="recorded", key="")
    return events


def announce_after_grant(grant_id, grantee_id):
    """After a consent is given: hand it to a worker, when the grantee listens."""
    from .tasks import announce_granted

    try:
        grantee = Partner.objects.unscoped().filter(pk=grantee_id).first()
        if grantee is not None and webhook_subscribed(partner=grantee, event_type=EVENT):
            announce_granted.delay(str(grant_id))
    except Exception:  # Redis away: the grantee still reads the records over the API
        logger.warning("could not enqueue record.shared webhooks", exc_info=True)


def records_announce_granted(*, grant_id):
    """Emit ``record.shared`` to the grantee of a consent for the customer's records, received
    before the consent, that it may see now and only through it: records of its counterparts
    whose every clause toward it that lets it see them is of the consent's purpose and of a
    data category the consent added (a consent that replaced one keeps what that one covered).
    Nothing when the consent has ended since. Idempotent (dedupe per chunk)."""
    from consent.models import ConsentGrant

    grant = ConsentGrant.objects.filter(pk=grant_id).select_related("grantee").first()
    if grant is None or grant.revoked_at is not None or grant.customer_id is None:
        return 0
    partner = grant.grantee
    if not webhook_subscribed(partner=partner, event_type=EVENT):
        return 0
    replaced = (
        ConsentGrant.objects.filter(
            customer_id=grant.customer_id,
            grantee=partner,
            purpose=grant.purpose,
            ended_by=ConsentGrant.Ended.SUPERSEDED,
            revoked_at=grant.granted_at,
        )
        .exclude(expires_at__lte=grant.granted_at)
        .first()
    )
    added = set(grant.categories) - set(replaced.categories if replaced else ())
    counterparts = _counterparts(partner)
    if not added or not counterparts:
        return 0
    visible = visible_records(partner=partner).filter(
        customer_id=grant.customer_id,
        submitted_by_id__in=counterparts,
        received_at__lt=grant.granted_at,
    )
    rows = []
    for row in visible.queryset.order_by("submitted_by_id", "id"):
        # The clauses that let the partner see this row now, and whether this consent alone does.
        through = [
            g
            for g in visible.grants
            if g.counterpart_id == row.submitted_by_id
            and g.kind == row.kind
            and getattr(row, g.flag, False)
        ]
        if through and all(
            g.purpose == grant.purpose and KINDS[g.kind].category in added for g in through
        ):
            rows.append(row)
    return _emit(partner, visible, rows, reason="consent_given", key=f"consent:{grant.pk}:")
