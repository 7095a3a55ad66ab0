"""Reads on the customer's side. ``consent_allows`` and ``consent_exists`` are THE consent check:
every visibility rule calls one of them, at read time, against the database — never a cache."""

import itertools
import uuid
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Expression, F, Q, QuerySet
from django.utils import timezone

from clearinghouse.common.sql import columns, take
from partners.models import Partner

from .catalogue import CATEGORIES, PURPOSES
from .identity import ParsedIdentifier
from .models import (
    AccessLogEntry,
    ConsentGrant,
    Customer,
    CustomerSource,
    Identifier,
    Receipt,
)


def _active(at: datetime) -> Q:
    return Q(revoked_at__isnull=True, customer__erased_at__isnull=True) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=at)
    )


def consent_allows(
    *,
    partner: Partner | None,
    customer_id: uuid.UUID | None,
    purpose: str,
    category: str,
    at: datetime | None = None,
) -> bool:
    """May ``partner`` see ``category`` data of customer ``customer_id`` for ``purpose`` now?
    True only for an active, unexpired grant of a live customer that names the category."""
    if customer_id is None or partner is None:
        return False
    return (
        ConsentGrant.objects.for_partner(partner)
        .filter(
            customer_id=customer_id,
            purpose=purpose,
            categories__contains=[category],
        )
        .filter(_active(at or timezone.now()))
        .exists()
    )


class ConsentExists(Expression):
    """``consent_exists`` as an expression: the EXISTS is written out, so that composing it
    costs next to nothing on the read path (the ORM's subquery took longer to build than
    PostgreSQL took to run it); ``tests/consent/test_properties.py`` holds it to the same
    answers as ``consent_allows``."""

    conditional = True
    output_field = BooleanField()

    def __init__(
        self,
        customer: F | Expression,
        *,
        partner_id: uuid.UUID,
        purpose: str,
        category: str,
        at: datetime,
    ) -> None:
        super().__init__()
        self.customer = customer
        self.values = (partner_id, purpose, category, at)

    def get_source_expressions(self):
        return [self.customer]

    def set_source_expressions(self, exprs):
        (self.customer,) = exprs

    def as_sql(self, compiler, connection):
        column, params = compiler.compile(self.customer)
        grant, customer = ConsentGrant._meta, Customer._meta
        categories = grant.get_field("categories").db_type(connection)
        sql = f"""EXISTS (SELECT 1 FROM {grant.db_table} g
            JOIN {customer.db_table} c ON c.id = g.customer_id
            WHERE g.customer_id = {column} AND g.grantee_id = %s AND g.purpose = %s
              AND g.categories @> ARRAY[%s]::{categories}
              AND g.revoked_at IS NULL AND c.erased_at IS NULL
              AND (g.expires_at IS NULL OR g.expires_at > %s))"""  # noqa: S608 (names only)
        return sql, (*params, *self.values)


def consent_exists(
    *,
    partner_id: uuid.UUID,
    purpose: str,
    category: str,
    customer: F | Expression | None = None,
    at: datetime | None = None,
) -> ConsentExists:
    """The same rule as ``consent_allows`` as an SQL ``EXISTS``, for set-based queries over rows
    that carry a customer (``customer``: an expression for it, ``F("customer_id")`` by
    default)."""
    return ConsentExists(
        customer if customer is not None else F("customer_id"),
        partner_id=partner_id,
        purpose=purpose,
        category=category,
        at=at or timezone.now(),
    )


def identifier_match(parsed: ParsedIdentifier) -> Q:
    """The Q that finds an identifier row by its whole unique key (kind, namespace, HMAC version,
    digest) under every configured key version, so that the lookup is an index scan."""
    match = Q(pk__in=[])
    for version, digest in parsed.digests():
        match |= Q(hmac_version=version, digest=digest)
    return Q(kind=parsed.kind, namespace=parsed.namespace) & match


def customer_by_identifier(parsed: ParsedIdentifier) -> Customer | None:
    """The live customer an identifier names, or None. The same match as ``identifier_match``
    written out: a customer timeline asks it on every read, and composing the ORM query took
    longer than the index lookup."""
    digests = parsed.digests()
    pairs = " OR ".join(["(i.hmac_version = %s AND i.digest = %s)"] * len(digests)) or "false"
    sql = f"""SELECT {columns(Customer, "c")} FROM {Identifier._meta.db_table} i
        JOIN {Customer._meta.db_table} c ON c.id = i.customer_id
        WHERE i.kind = %s AND i.namespace = %s AND ({pairs}) AND c.erased_at IS NULL
        LIMIT 1"""  # noqa: S608 (names and placeholders only)
    with connection.cursor() as cursor:
        cursor.execute(sql, [parsed.kind, parsed.namespace, *itertools.chain(*digests)])
        row = cursor.fetchone()
    if row is None:
        return None
    return take(Customer, row)[0]


def consent_status(
    *, partner: Partner, customer: Customer | None, at: datetime | None = None
) -> list[dict[str, Any]]:
    """Per purpose, what the customer allows this partner now (for the partner's API)."""
    at = at or timezone.now()
    grants = {}
    if customer is not None:
        for grant in (
            ConsentGrant.objects.for_partner(partner).filter(customer=customer).filter(_active(at))
        ):
            grants[grant.purpose] = grant
    out = []
    for key in PURPOSES:
        grant = grants.get(key)
        out.append(
            {
                "purpose": key,
                "granted": grant is not None,
                "categories": list(grant.categories) if grant else [],
                "policy_version": grant.policy_version if grant else None,
                "granted_at": grant.granted_at if grant else None,
                "expires_at": grant.expires_at if grant else None,
                "consent_id": grant.pk if grant else None,
            }
        )
    return out


def customer_overview(*, customer: Customer, at: datetime | None = None) -> list[dict[str, Any]]:
    """The dashboard's overview: each partner that holds my data or may use it, with the
    categories it holds and the purposes it may use them for."""
    at = at or timezone.now()
    rows = {}
    for source in CustomerSource.objects.filter(customer=customer).select_related("partner"):
        rows[source.partner_id] = {
            "partner": source.partner,
            "holds": set(source.categories),
            "purposes": {},
        }
    for grant in (
        ConsentGrant.objects.unscoped("the customer's own consents, to every partner")
        .filter(customer=customer)
        .filter(_active(at))
        .select_related("grantee")
    ):
        row = rows.setdefault(
            grant.grantee_id, {"partner": grant.grantee, "holds": set(), "purposes": {}}
        )
        row["purposes"][grant.purpose] = grant
    for row in rows.values():
        row["holds"] = [CATEGORIES[c] for c in sorted(row["holds"]) if c in CATEGORIES]
    return sorted(rows.values(), key=lambda r: r["partner"].name)


def customer_grants(*, customer: Customer) -> QuerySet[ConsentGrant]:
    return (
        ConsentGrant.objects.unscoped("the customer's own consents, to every partner")
        .filter(customer=customer)
        .select_related("grantee", "collected_by")
    )


def customer_receipts(*, customer: Customer) -> QuerySet[Receipt]:
    return Receipt.objects.filter(customer=customer).select_related("grant__grantee")


def customer_access_log(*, customer: Customer, limit: int | None = 500) -> QuerySet[AccessLogEntry]:
    return AccessLogEntry.objects.filter(customer=customer).select_related("partner")[:limit]


def customer_live(customer_id: uuid.UUID | str) -> Customer | None:
    return Customer.objects.filter(pk=customer_id, erased_at__isnull=True).first()


def open_grant(*, customer: Customer, grantee: Partner, purpose: str) -> ConsentGrant | None:
    return (
        ConsentGrant.objects.for_partner(grantee)
        .filter(customer=customer, purpose=purpose, revoked_at__isnull=True)
        .first()
    )


def consent_partners(*, customer: Customer) -> list[Partner]:
    """The active partners a customer can give consent to here: those that hold data on them and
    those they ever gave consent to (so a withdrawn consent can be given again)."""
    holders = {row["partner"].pk: row["partner"] for row in customer_overview(customer=customer)}
    given = ConsentGrant.objects.unscoped("the customer's own consents, to every partner")
    for grant in given.filter(customer=customer).select_related("grantee"):
        holders.setdefault(grant.grantee_id, grant.grantee)
    return sorted((p for p in holders.values() if p.is_active), key=lambda p: p.name)
