"""Reads of the discrepancy queue: a discrepancy reaches a party only while that party may see
every record it rests on (through the one visibility decision), so nothing leaks through it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Collate

from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.visibility import Projected, visible_records
from consent.services import Access, access_record
from partners.models import Partner
from partners.record_kinds import KINDS

from .models import Discrepancy, DiscrepancyEvidence, DiscrepancyNote, ReconciliationRun


def discrepancies_visible(*, partner: Partner, at: datetime | None = None) -> QuerySet[Discrepancy]:
    # Each evidence record looked up by its key among the visible ones (NOT EXISTS, never NOT
    # IN: PostgreSQL cannot turn a NOT IN into an anti-join, and past work_mem it compares each
    # evidence row with every visible id in turn).
    visible = visible_records(partner=partner, at=at).contains(OuterRef("record_id"))
    hidden = DiscrepancyEvidence.objects.filter(discrepancy=OuterRef("pk")).exclude(visible)
    # A partner is a party on one side only: the side's queue index, in the queue's order.
    side = "manufacturer" if partner.kind == Partner.Kind.MANUFACTURER else "retailer"
    return (
        Discrepancy.objects.for_partner(partner)
        .filter(**{side: partner})
        .annotate(hidden=Exists(hidden))
        .filter(hidden=False)
        # A sale without registration rests on the registrations the retailer may see; the
        # manufacturer is not told that a unit it registered is unregistered (once resolved or
        # dismissed, the finding says nothing of the kind).
        .exclude(
            Q(manufacturer_id=partner.pk, kind="sale_without_registration", status="open")
            & _registered()
        )
        .select_related("manufacturer", "retailer")
    )


def _registered() -> Q:
    """For a discrepancy: its manufacturer's own registration of the unit, live, of the
    finding's customer where both name one (the run's match, from the manufacturer's side)."""
    # The finding's unit in the records' collation, so that the unit index finds it.
    registrations = InteractionRecord.objects.unscoped(
        "the finding's own manufacturer's registrations, matched to the outer row"
    ).filter(
        submitted_by_id=OuterRef("manufacturer_id"),
        kind="warranty_registration",
        gtin=Collate(OuterRef("gtin"), "default"),
        serial=Collate(OuterRef("serial"), "default"),
        tombstoned_at__isnull=True,
    )
    return Q(
        Exists(
            registrations.filter(
                Q(customer_id__isnull=True) | Q(customer_id=OuterRef("customer_id"))
            )
        )
    ) | Q(Q(customer_id__isnull=True) & Exists(registrations))


# What a finding's product and detail values reveal of its evidence records (projection,
# invariant 3): a value is shown to a party only when it sees that field of the record in that
# role (every field of its own records); the product, only when it sees the product of one of
# them. A value whose role is not among the finding's evidence, or that is not listed, comes
# from no record of the finding (a setting, a date every party sees, the maker's terms).
DETAIL_SOURCES = {
    "registration_date_mismatch": {"days_apart": (("registration",), "purchase_date")},
    "claim_outside_warranty": {
        "warranty_months": (("registration",), "warranty_months"),
        "warranty_ended": (("registration",), "warranty_months"),
    },
    "service_status_conflict": {
        "request_status": (("request",), "status"),
        "reference": (("request", "completion"), "reference"),
    },
    "service_overdue": {"reference": (("request",), "reference")},
    "accrual_not_reversed": {
        "points": (("accrual",), "points"),
        "sale_reference": (("accrual",), "sale_reference"),
    },
    "double_credit": {
        "retailer_points": (("retailer accrual",), "points"),
        "manufacturer_points": (("manufacturer accrual",), "points"),
    },
    "redemption_exceeds_balance": {"balance_after": (("redemption",), "points")},
}
ALL_FIELDS = None  # a party's own record


def _fields_seen(partner: Partner, purposes: dict | None = None) -> dict[tuple, set[str]]:
    """{(counterpart id, kind): the fields ``partner`` sees of such a record under every clause
    that may show it} — the intersection, so that no purpose's wider clause is assumed. When
    ``purposes`` is a dict, it receives the purposes of those clauses per key."""
    seen = {}
    for grant in visible_records(partner=partner).grants:
        key = (grant.counterpart_id, grant.kind)
        seen[key] = seen[key] & grant.fields if key in seen else set(grant.fields)
        if purposes is not None:
            purposes.setdefault(key, set()).add(grant.purpose)
    return seen


def with_unit_shown(queryset: QuerySet[Discrepancy], *, partner: Partner) -> QuerySet[Discrepancy]:
    """``queryset`` limited to the discrepancies whose unit ``partner`` may see (a filter by
    serial must not find those whose unit it is not shown, ``discrepancies_shown``)."""
    shows = Q(record__submitted_by_id=partner.pk)
    for (counterpart, kind), fields in _fields_seen(partner).items():
        if "product" in fields:
            shows |= Q(record__submitted_by_id=counterpart, record__kind=kind)
    evidence = DiscrepancyEvidence.objects.filter(shows, discrepancy=OuterRef("pk"))
    return queryset.filter(Exists(evidence))


def discrepancies_shown(
    *,
    partner: Partner,
    discrepancies: Iterable[Discrepancy],
    channel: str | None = None,
    request_id: str = "",
) -> list[Discrepancy]:
    """Give each discrepancy ``shown_product`` ({gtin, serial} or None) and ``shown_detail``:
    what ``partner`` may see of them (``DETAIL_SOURCES``). One query for the evidence. With a
    ``channel`` (a list: the queue), a finding that rests on a counterpart's record is a read
    of that customer's data, written to their access log (the detail pages log their evidence
    themselves)."""
    discrepancies = list(discrepancies)
    purposes = {}
    seen = _fields_seen(partner, purposes)
    roles, counterpart = {}, {}
    evidence = DiscrepancyEvidence.objects.filter(
        discrepancy__in=[d.pk for d in discrepancies]
    ).values_list("discrepancy_id", "role", "record__kind", "record__submitted_by_id")
    for discrepancy_id, role, kind, submitter in evidence:
        fields = ALL_FIELDS if submitter == partner.pk else seen.get((submitter, kind), set())
        roles.setdefault(discrepancy_id, {})[role] = fields
        if submitter != partner.pk:
            counterpart.setdefault(discrepancy_id, set()).add((submitter, kind))
    if channel is not None:
        _log_queue_read(partner, discrepancies, counterpart, purposes, channel, request_id)

    def sees(fields, field):
        return fields is ALL_FIELDS or field in fields

    for d in discrepancies:
        by_role = roles.get(d.pk, {})
        product = d.gtin and any(sees(f, "product") for f in by_role.values())
        d.shown_product = {"gtin": d.gtin, "serial": d.serial} if product else None
        sources = DETAIL_SOURCES.get(d.kind, {})
        d.shown_detail = {}
        for key, value in d.detail.items():
            if key in sources:
                candidates, field = sources[key]
                role = next((r for r in candidates if r in by_role), None)
                if role is not None and not sees(by_role[role], field):
                    continue
            d.shown_detail[key] = value
    return discrepancies


def _log_queue_read(
    partner: Partner,
    discrepancies: list[Discrepancy],
    counterpart: dict,
    purposes: dict,
    channel: str,
    request_id: str,
) -> None:
    accesses = {}
    for d in discrepancies:
        if d.customer_id is None or d.pk not in counterpart:
            continue
        access = accesses.setdefault(d.customer_id, Access(0, set(), set()))
        for key in counterpart[d.pk]:
            access.record_count += 1
            access.purposes.update(purposes.get(key, ()))
            access.categories.add(KINDS[key[1]].category)
    access_record(partner=partner, accesses=accesses, channel=channel, request_id=request_id)


def discrepancy_evidence(
    *, partner: Partner, discrepancy: Discrepancy, channel: str, request_id: str = ""
) -> Projected:
    """The discrepancy's records as ``partner`` may see them (logged like any other read)."""
    roles = dict(discrepancy.evidence.values_list("record_id", "role"))
    visible = (
        visible_records(partner=partner).filter(id__in=list(roles)).order_by("occurred_at", "id")
    )
    projected = visible.read(channel=channel, request_id=request_id)
    for pk, item in zip(projected.ids, projected, strict=True):
        item["role"] = roles[pk]
    return projected


def runs_for(*, partner: Partner, limit: int = 50) -> QuerySet[ReconciliationRun]:
    return ReconciliationRun.objects.for_partner(partner).select_related(
        "manufacturer", "retailer"
    )[:limit]


def dashboard_panel(*, partner: Partner) -> dict:
    from django.db.models import Count

    open_ = discrepancies_visible(partner=partner).filter(status="open")
    by_severity = dict(open_.order_by().values_list("severity").annotate(n=Count("id")))
    return {
        "template": "portal/discrepancies/_panel.html",
        "open": sum(by_severity.values()),
        "high": by_severity.get("high", 0),
        "last_run": runs_for(partner=partner, limit=1),
    }


def customer_prompts(*, customer_id: UUID) -> list[dict]:
    """Offer the registration for a sale that was never registered, where the customer lets
    the manufacturer use their purchase for warranty (so the offer itself shares nothing new)."""
    from consent.selectors import consent_allows

    prompts = []
    open_ = (
        Discrepancy.objects.unscoped("the customer's own findings, across pairs")
        .filter(customer_id=customer_id, kind="sale_without_registration", status="open")
        # The finding rests on what the retailer may see: the manufacturer may hold a
        # registration that is not shared back. The customer is told only what is true.
        .exclude(_registered())
        .select_related("manufacturer", "retailer")
    )
    for d in open_:
        if consent_allows(
            partner=d.manufacturer, customer_id=customer_id, purpose="warranty", category="purchase"
        ):
            prompts.append(
                {
                    "kind": "register_warranty",
                    "text": f"Your {d.retailer.name if d.retailer else ''} purchase (serial {d.serial}) is not registered "
                    f"for warranty with {d.manufacturer.name} yet. Registering keeps a claim simple.",
                }
            )
    return prompts


def discrepancy_history(discrepancy: Discrepancy) -> list[DiscrepancyNote]:
    """The discrepancy's notes, oldest first, beginning with its opening. A run writes no note
    for each finding it opens (a first full run opens hundreds of thousands): the opening is the
    discrepancy's own ``opened_at``, shown as the first entry (discrepancies opened before that
    change keep their stored note)."""
    notes = list(discrepancy.notes.select_related("partner", "user"))
    if not any(n.action == DiscrepancyNote.Action.OPENED for n in notes):
        notes.insert(
            0,
            DiscrepancyNote(
                discrepancy=discrepancy,
                action=DiscrepancyNote.Action.OPENED,
                created_at=discrepancy.opened_at,
            ),
        )
    return notes
