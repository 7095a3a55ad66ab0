"""THE visibility decision: what partner P may see of the interaction records, now.

P sees its own records, plus a counterpart's record when, at the moment of the read,

  (a) an active agreement's active version has a clause for that record's kind and a purpose,
      in the direction counterpart → P (``partners.agreements.rules_toward``), and
  (b) the record's customer holds an active, unexpired consent for P, that purpose and the
      record's data category (``consent.selectors.consent_exists``).

Both are evaluated in the same SQL statement as the read, from the database, so a revocation
or a suspended agreement applies to the very next read; nothing is cached. Only the clause's
fields are returned (``project``), never the counterpart's internal ids, and every read of
counterpart data is written to the customers' access log (``read``). Every path that shows
records to a partner — API, portal, exports, webhooks, reconciliation evidence — goes through
``visible_records`` and ``project``/``read``.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from consent.selectors import consent_exists
from consent.services import Access, access_record
from partners.agreements import rules_toward
from partners.record_kinds import KINDS
from partners.tenancy import TenancyError

from .models import InteractionRecord

ALWAYS = ("ref", "kind", "recorded_by", "occurred_at")


@dataclass(frozen=True)
class Grant:
    """One way a counterpart's record reaches P: kind, purpose, and the fields shown."""

    counterpart_id: object
    kind: str
    purpose: str
    fields: frozenset
    flag: str


@dataclass
class Visible:
    partner: object
    queryset: object
    grants: tuple

    def filter(self, *args, **kwargs):
        return Visible(self.partner, self.queryset.filter(*args, **kwargs), self.grants)

    def exclude(self, *args, **kwargs):
        return Visible(self.partner, self.queryset.exclude(*args, **kwargs), self.grants)

    def order_by(self, *fields):
        return Visible(self.partner, self.queryset.order_by(*fields), self.grants)


def visible_records(*, partner, at=None):
    """The records ``partner`` may see at ``at`` (now), as a ``Visible`` (queryset + how each
    counterpart row is shared). Fails closed without a partner."""
    if partner is None or getattr(partner, "pk", None) is None:
        raise TenancyError("visible_records needs a partner")
    at = at or timezone.now()
    merged = defaultdict(set)
    for rule in rules_toward(partner=partner):
        merged[(rule.counterpart_id, rule.kind, rule.purpose)] |= set(rule.fields)
    grants = []
    annotations = {}
    # A consent is to a partner for a purpose and a data category, whatever the record's kind
    # or submitter: one EXISTS per (purpose, category), shared by every clause that needs it,
    # and one condition per counterpart and flag over all the kinds it covers.
    flags = {}
    kinds_of = defaultdict(list)
    for (counterpart_id, kind, purpose), fields in sorted(merged.items(), key=str):
        category = KINDS[kind].category
        flag = flags.get((purpose, category))
        if flag is None:
            flag = flags[(purpose, category)] = f"_shared_{len(flags)}"
            annotations[flag] = consent_exists(
                partner_id=partner.pk,
                purpose=purpose,
                category=category,
                at=at,
            )
        kinds_of[(counterpart_id, flag)].append(kind)
        grants.append(Grant(counterpart_id, kind, purpose, frozenset(fields), flag))
    condition = Q(submitted_by_id=partner.pk)
    for (counterpart_id, flag), kinds in kinds_of.items():
        # The cheap column tests first: PostgreSQL evaluates them in this order and skips the
        # consent lookup for a record of another partner or kind.
        condition |= Q(
            submitted_by_id=counterpart_id, kind__in=sorted(set(kinds)), tombstoned_at__isnull=True
        ) & Q(**{flag: True})
    # The one unscoped read of records: it is restricted right here, by the rule above.
    queryset = (
        InteractionRecord.objects.unscoped()
        .select_related("submitted_by")
        .annotate(**annotations)
        .filter(condition)
    )
    return Visible(partner, queryset, tuple(grants))


def _partner_ref(partner):
    return {"name": partner.name, "slug": partner.slug, "kind": partner.kind}


def project(record, visible):
    """The record as ``visible.partner`` may see it: everything of its own records; of a
    counterpart's, the always-shown fields plus the union of the matching clauses' fields."""
    partner = visible.partner
    out = {
        "ref": str(record.ref),
        "kind": record.kind,
        "kind_label": KINDS[record.kind].label,
        "recorded_by": _partner_ref(record.submitted_by),
        "occurred_at": record.occurred_at,
        "own": record.submitted_by_id == partner.pk,
    }
    if out["own"]:
        out.update(
            external_id=record.external_id,
            product={"gtin": record.gtin, "serial": record.serial} if record.gtin else None,
            customer=str(record.customer_id) if record.customer_id else None,
            payload=record.payload,
            received_at=record.received_at,
            erased=record.tombstoned_at is not None,
            shared_for=[],
        )
        return out
    fields, purposes = set(), set()
    for grant in visible.grants:
        if (
            getattr(record, grant.flag, False)
            and grant.counterpart_id == record.submitted_by_id
            and grant.kind == record.kind
        ):
            fields |= grant.fields
            purposes.add(grant.purpose)
    if "product" in fields and record.gtin:
        out["product"] = {"gtin": record.gtin, "serial": record.serial}
    if "customer" in fields and record.customer_id:
        out["customer"] = str(record.customer_id)
    out["payload"] = {k: v for k, v in record.payload.items() if k in fields}
    out["shared_for"] = sorted(purposes)
    return out


def read(records, visible, *, channel, request_id=""):
    """Project rows for ``visible.partner`` and write one access-log entry per customer whose
    counterpart data this read showed (never per row)."""
    projected = []
    accesses = {}
    for record in records:
        item = project(record, visible)
        projected.append(item)
        if not item["own"] and record.customer_id:
            access = accesses.setdefault(record.customer_id, Access(0, set(), set()))
            access.record_count += 1
            access.purposes.update(item["shared_for"])
            access.categories.add(KINDS[record.kind].category)
    if accesses:
        access_record(
            partner=visible.partner, accesses=accesses, channel=channel, request_id=request_id
        )
    return projected


def refs_visible(*, partner, refs, at=None):
    """Whether ``partner`` may see every record of ``refs`` now (a webhook about to carry
    their data asks this before each attempt)."""
    refs = set(map(str, refs))
    found = visible_records(partner=partner, at=at).queryset.filter(ref__in=refs).count()
    return found == len(refs)


def unit_timeline(*, partner, gtin, serial, at=None):
    """Everything ``partner`` may see about one product unit, oldest first."""
    return (
        visible_records(partner=partner, at=at)
        .filter(gtin=gtin, serial=serial)
        .order_by("occurred_at", "id")
    )


def customer_timeline(*, partner, customer_id, at=None):
    """Everything ``partner`` may see about one customer, across their units, oldest first."""
    return (
        visible_records(partner=partner, at=at)
        .filter(customer_id=customer_id)
        .order_by("occurred_at", "id")
    )
