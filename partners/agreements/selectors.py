"""Reads for sharing agreements, always for one partner (a party).

``rules_toward`` and ``rules_from`` are what the core's visibility decision asks: which record
kinds, purposes and fields flow between a partner and its counterparts right now. They read the
database on every call (no cache), so a suspension, termination or countersignature applies to the
very next read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from ..models import AgreementEvent, AgreementVersion, Partner, SharingAgreement
from ..tenancy import require_partner
from .clauses import MANUFACTURER_TO_RETAILER, RETAILER_TO_MANUFACTURER

RULES_SQL = f"""
    SELECT a.manufacturer_id, a.retailer_id, v.clauses
      FROM {AgreementVersion._meta.db_table} v
      JOIN {SharingAgreement._meta.db_table} a ON a.id = v.agreement_id
      JOIN {Partner._meta.db_table} m ON m.id = a.manufacturer_id
      JOIN {Partner._meta.db_table} r ON r.id = a.retailer_id
     WHERE (a.manufacturer_id = %(partner)s OR a.retailer_id = %(partner)s)
       AND v.status = %(version)s AND a.status = %(agreement)s
       AND m.status = %(party)s AND r.status = %(party)s
"""  # noqa: S608 (table names only)


@dataclass(frozen=True)
class SharingRule:
    """One clause as seen from one partner: with whom, which kind, for what, which fields."""

    counterpart_id: uuid.UUID  # the other party
    kind: str
    purpose: str
    fields: frozenset[str]  # shareable field names from the clause


def _rules(partner, *, receiving):
    require_partner(partner, "Sharing rules")
    # Written out rather than built with the ORM: every read of records asks this, and composing
    # the three-join query cost more than running it. The same filter as
    # ``AgreementVersion.objects.for_partner(partner)`` restricted to what is in force.
    with connection.cursor() as cursor:
        cursor.execute(
            RULES_SQL,
            {
                "partner": partner.pk,
                "version": AgreementVersion.Status.ACTIVE,
                "agreement": SharingAgreement.Status.ACTIVE,
                "party": Partner.Status.ACTIVE,
            },
        )
        rows = cursor.fetchall()
    rules = []
    # Django's connection reads jsonb as text (a JSONField decodes it; a bare cursor does not).
    for manufacturer_id, retailer_id, clauses_json in rows:
        clauses = orjson.loads(clauses_json)
        is_manufacturer = manufacturer_id == partner.pk
        counterpart_id = retailer_id if is_manufacturer else manufacturer_id
        outgoing = MANUFACTURER_TO_RETAILER if is_manufacturer else RETAILER_TO_MANUFACTURER
        incoming = RETAILER_TO_MANUFACTURER if is_manufacturer else MANUFACTURER_TO_RETAILER
        wanted = incoming if receiving else outgoing
        rules.extend(
            SharingRule(
                counterpart_id=counterpart_id,
                kind=clause["kind"],
                purpose=clause["purpose"],
                fields=frozenset(clause["fields"]),
            )
            for clause in clauses
            if clause["direction"] == wanted
        )
    rules.sort(key=lambda r: (str(r.counterpart_id), r.kind, r.purpose))
    return rules


def rules_toward(*, partner: Partner) -> list[SharingRule]:
    """Clauses of the ACTIVE version of every ACTIVE (not suspended/terminated) agreement of `partner`
    whose direction has the counterpart sharing WITH `partner`. Both parties must be active partners.
    Evaluated from the database on every call (no caching)."""
    return _rules(partner, receiving=True)


def rules_from(*, partner: Partner) -> list[SharingRule]:
    """The same, for what `partner` shares with its counterparts (counterpart_id = the receiver)."""
    return _rules(partner, receiving=False)


def agreement_list(*, partner: Partner) -> QuerySet[SharingAgreement]:
    """The partner's agreements (as either party), newest first, with both parties and every
    version loaded in a fixed number of queries."""
    return (
        SharingAgreement.objects.for_partner(partner)
        .select_related("manufacturer", "retailer", "suspended_by", "terminated_by")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=AgreementVersion.objects.for_partner(partner)
                .select_related("proposed_by", "proposed_by_user", "countersigned_by_user")
                .order_by("-number"),
            )
        )
    )


def agreement_history(*, partner: Partner, agreement: SharingAgreement) -> QuerySet[AgreementEvent]:
    """Who did what to the agreement, and when, newest first."""
    return (
        AgreementEvent.objects.for_partner(partner)
        .filter(agreement=agreement)
        .select_related("partner", "actor", "version")
    )


def agreement_counterparts(*, partner: Partner) -> QuerySet[Partner]:
    """The partners this one may propose an agreement to: active, of the other kind, and without
    an agreement with it that is not terminated (that one is changed by proposing a version)."""
    other = (
        Partner.Kind.RETAILER
        if partner.kind == Partner.Kind.MANUFACTURER
        else Partner.Kind.MANUFACTURER
    )
    open_with = (
        SharingAgreement.objects.for_partner(partner)
        .exclude(status=SharingAgreement.Status.TERMINATED)
        .values_list("manufacturer_id", "retailer_id")
    )
    taken = {pk for pair in open_with for pk in pair}
    return (
        Partner.objects.unscoped(
            "naming a counterpart needs no access to its objects, only its name"
        )
        .filter(status=Partner.Status.ACTIVE, kind=other)
        .exclude(pk__in=taken)
        .order_by("name")
    )


def agreement_awaiting(*, partner: Partner) -> int:
    """How many proposals wait for this partner's countersignature."""
    return (
        AgreementVersion.objects.for_partner(partner)
        .filter(status=AgreementVersion.Status.PROPOSED)
        .exclude(proposed_by=partner)
        .count()
    )


def pairs_in_force(*, partner: Partner | None = None) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(manufacturer id, retailer id) of every agreement in force between two active partners:
    the pairs the reconciliation workers run for; with ``partner``, only its own pairs."""
    agreements = SharingAgreement.objects.unscoped("the reconciliation scheduler runs every pair")
    agreements = agreements.filter(
        status=SharingAgreement.Status.ACTIVE,
        manufacturer__status=Partner.Status.ACTIVE,
        retailer__status=Partner.Status.ACTIVE,
    )
    if partner is not None:
        agreements = agreements.filter(Q(manufacturer=partner) | Q(retailer=partner))
    return list(agreements.values_list("manufacturer_id", "retailer_id"))
