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
import uuid

from partners.agreements.selectors import pairs_in_force
from partners.models import Partner
from partners.record_kinds import KINDS
from partners.webhooks import payload_builder, webhook_emit, webhook_subscribed

from .visibility import visible_records

logger = logging.getLogger(__name__)
EVENT = "record.shared"
PER_EVENT = 200


def _counterparts(partner):
    return {other for pair in pairs_in_force(partner=partner) for other in pair} - {partner.pk}


def listening_counterparts(partner):
    """The partners with an agreement in force with ``partner`` that subscribe to the event."""
    ids = _counterparts(partner)
    counterparts = Partner.objects.unscoped("its counterparts, asked whether they listen")
    return [
        other
        for other in counterparts.filter(pk__in=ids)
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


def _emit(partner, found, *, reason, key):
    """One event per submitter and chunk of ``found`` (refs by submitter id, visible to
    ``partner`` now); ``key`` makes each chunk's event once only. The event names the records;
    their data is read through the decision when it is sent (``shared_records_data``)."""
    events = 0
    slugs = dict(
        Partner.objects.unscoped("the submitters of records the partner may see, by name")
        .filter(pk__in=list(found))
        .values_list("pk", "slug")
    )
    for submitter_id, refs in found.items():
        for start in range(0, len(refs), PER_EVENT):
            chunk = refs[start : start + PER_EVENT]
            webhook_emit(
                partner=partner,
                event_type=EVENT,
                subject={"recorded_by": slugs[submitter_id], "reason": reason, "records": chunk},
                dedupe_key=f"{EVENT}:{key}{chunk[0]}:{chunk[-1]}:{len(chunk)}",
            )
            events += 1
    return events


def uuids(values):
    """The values that are UUIDs (a subject is ours, but a bad one must not fail a delivery)."""
    found = []
    for value in values if isinstance(values, list) else []:
        try:
            found.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return found


@payload_builder(EVENT)
def shared_records_data(*, partner, subject, channel, request_id=""):
    """The records an event names, as ``partner`` may see them now (projected and logged), or
    None when it may see none of them any more."""
    records = (
        visible_records(partner=partner)
        .filter(ref__in=uuids(subject.get("records")))
        .order_by("id")
        .read(channel=channel, request_id=request_id)
    )
    if not records:
        return None
    return {
        "recorded_by": subject.get("recorded_by"),
        "reason": subject.get("reason"),
        "records": list(records),
    }


def records_announce(*, submitter, refs):
    """Emit ``record.shared`` to every listening counterpart for the records of ``refs`` it may
    see now. Idempotent: a repeated call stores no second event (dedupe per chunk)."""
    events = 0
    for counterpart in listening_counterparts(submitter):
        visible = visible_records(partner=counterpart).filter(
            submitted_by_id=submitter.pk, ref__in=refs
        )
        found = {}
        for ref, submitted_by, _, _ in visible.refs():
            found.setdefault(submitted_by, []).append(str(ref))
        events += _emit(counterpart, found, reason="recorded", key="")
    return events


def announce_after_grant(grant_id, grantee_id):
    """After a consent is given: hand it to a worker, when the grantee listens."""
    from .tasks import announce_granted

    try:
        grantees = Partner.objects.unscoped("a consent's grantee, asked whether it listens")
        grantee = grantees.filter(pk=grantee_id).first()
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

    grant = (
        ConsentGrant.objects.unscoped("the task runs for the grant id it was given")
        .filter(pk=grant_id)
        .select_related("grantee")
        .first()
    )
    if grant is None or grant.revoked_at is not None or grant.customer_id is None:
        return 0
    partner = grant.grantee
    if not webhook_subscribed(partner=partner, event_type=EVENT):
        return 0
    replaced = (
        ConsentGrant.objects.for_partner(partner)
        .filter(
            customer_id=grant.customer_id,
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
    found = {}
    for ref, submitted_by, kind, purposes in visible.refs():
        # Whether the clauses that let the partner see this row now are this consent's alone.
        if purposes == {grant.purpose} and KINDS[kind].category in added:
            found.setdefault(submitted_by, []).append(str(ref))
    return _emit(partner, found, reason="consent_given", key=f"consent:{grant.pk}:")
