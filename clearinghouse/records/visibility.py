"""THE visibility decision: what partner P may see of the interaction records, now.

P sees its own records, plus a counterpart's record when, at the moment of the read,

  (a) an active agreement's active version has a clause for that record's kind and a purpose,
      in the direction counterpart → P (``partners.agreements.rules_toward``), and
  (b) the record's customer holds an active, unexpired consent for P, that purpose and the
      record's data category (``consent.selectors.consent_exists``).

Both are evaluated in the same SQL statement as the read, from the database, so a revocation
or a suspended agreement applies to the very next read; nothing is cached. Only the clause's
fields are returned (``project``), never the counterpart's internal ids, and every read of
counterpart data is written to the customers' access log as it is handed out. Every path that
shows records to a partner — API, portal, exports, webhooks, reconciliation evidence — goes
through ``visible_records``, whose ``Visible`` hands out only projected rows (there is no raw
queryset to take around it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db.models import BooleanField, Count, Exists, Max, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from consent.selectors import consent_exists
from consent.services import Access, access_record
from partners.agreements import rules_toward
from partners.record_kinds import KINDS
from partners.tenancy import TenancyError

from .models import InteractionRecord

if TYPE_CHECKING:
    from rest_framework.pagination import BasePagination
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from partners.models import Partner

ALWAYS = ("ref", "kind", "recorded_by", "occurred_at")


@dataclass(frozen=True)
class Grant:
    """One way a counterpart's record reaches P: kind, purpose, and the fields shown."""

    counterpart_id: object
    kind: str
    purpose: str
    fields: frozenset
    flag: str


class Projected(list):
    """Projected records (dicts), in order; ``ids`` holds their internal ids in the same order,
    for joins inside the core (links on a timeline). The ids are never shown to a partner."""

    def __init__(self, items: Iterable[dict] = (), ids: Iterable[int] = ()) -> None:
        super().__init__(items)
        self.ids = tuple(ids)


class Visible:
    """What one partner may see of the records, now: THE gate. It hands out only projected rows
    and writes the customers' access log as it does (``read``, ``first``, ``page``,
    ``iterate``); it counts (``count``, ``exists``) and sums units (``units``), which show no
    customer's data. There is no raw queryset to take around it: the rows it selects stay
    inside. The one escape is ``compile_sql``, for set-based SQL that must join the decision
    (the reconciliation engine); whatever such SQL shows a partner goes through projection
    again (``discrepancies_shown``)."""

    __slots__ = ("_rows", "grants", "partner")

    def __init__(
        self, partner: Partner, rows: QuerySet[InteractionRecord], grants: tuple[Grant, ...]
    ) -> None:
        self.partner = partner
        self.grants = grants
        self._rows = rows

    def __repr__(self) -> str:
        return f"<Visible to {self.partner}>"

    def _narrowed(self, rows: QuerySet[InteractionRecord]) -> Visible:
        return Visible(self.partner, rows, self.grants)

    def filter(self, *args: Any, **kwargs: Any) -> Visible:
        return self._narrowed(self._rows.filter(*args, **kwargs))

    def exclude(self, *args: Any, **kwargs: Any) -> Visible:
        return self._narrowed(self._rows.exclude(*args, **kwargs))

    def order_by(self, *fields: str) -> Visible:
        return self._narrowed(self._rows.order_by(*fields))

    def sharing(self, field: str) -> Visible:
        """Only the rows whose ``field`` (``product``, ``customer`` or a payload field)
        ``partner`` sees: all of its own, and a counterpart's where a clause names the field."""
        condition = Q(submitted_by_id=self.partner.pk)
        for grant in self.grants:
            if field in grant.fields:
                condition |= Q(
                    submitted_by_id=grant.counterpart_id, kind=grant.kind, **{grant.flag: True}
                )
        return self._narrowed(self._rows.filter(condition))

    # --- no customer's data: how many ------------------------------------------------------

    def count(self) -> int:
        return self._rows.order_by().count()

    def exists(self) -> bool:
        return self._rows.exists()

    def contains(self, pk: Any) -> Exists:
        """An ``Exists`` over the rows for a record id (an ``OuterRef`` in a query of rows that
        rest on records: a finding is shown only while its evidence is)."""
        return Exists(self._rows.order_by().filter(pk=pk))

    def units(self, *, limit: int) -> list[dict]:
        """Product units with events here, how many and the latest, newest first; only rows
        whose product ``partner`` is shown count (``sharing("product")``). Each counterpart
        customer behind a listed unit is written to the access log (channel ``portal``)."""
        shown = self.sharing("product").exclude(gtin="")
        found = list(
            shown._rows.order_by()
            .values("gtin", "serial")
            .annotate(events=Count("id"), last=Max("occurred_at"))
            .order_by("-last")[:limit]
        )
        if found:
            units = Q()
            for unit in found:
                units |= Q(gtin=unit["gtin"], serial=unit["serial"])
            behind = shown.filter(units).exclude(submitted_by_id=self.partner.pk)
            behind._log(behind._rows.filter(customer__isnull=False), channel="portal")
        return found

    def ids_and_refs(self) -> list[tuple[int, str]]:
        """(internal id, ref) of every row: to join links inside the core, never shown."""
        return [(pk, str(ref)) for pk, ref in self._rows.order_by().values_list("id", "ref")]

    def refs(self) -> Iterator[tuple[UUID, UUID, str, set[str]]]:
        """The refs of the rows, with the purposes each is shared for (empty for one's own):
        what an event is about, to be read through the gate when it is sent. In the order given
        with ``order_by``, else by submitter and id."""
        rows = (
            self._rows
            if self._rows.query.order_by
            else self._rows.order_by("submitted_by_id", "id")
        )
        for row in rows:
            yield row.ref, row.submitted_by_id, row.kind, self._purposes(row)

    # --- projected rows, logged --------------------------------------------------------------

    def read(self, *, channel: str, request_id: str = "", limit: int | None = None) -> Projected:
        """The rows, projected, in order; each counterpart customer shown is logged."""
        rows = self._rows if limit is None else self._rows[:limit]
        return self._project(list(rows), channel=channel, request_id=request_id)

    def first(self, *, channel: str, request_id: str = "") -> dict | None:
        found = self.read(channel=channel, request_id=request_id, limit=1)
        return found[0] if found else None

    def iterate(self, *, channel: str, chunk: int = 1000, request_id: str = "") -> Iterator[dict]:
        """All the rows, projected, a chunk at a time (each chunk logged as it is read)."""
        batch = []
        for row in self._rows.iterator(chunk_size=chunk):
            batch.append(row)
            if len(batch) == chunk:
                yield from self._project(batch, channel=channel, request_id=request_id)
                batch = []
        if batch:
            yield from self._project(batch, channel=channel, request_id=request_id)

    def page(
        self,
        paginator: BasePagination,
        request: Request,
        *,
        view: APIView | None = None,
        channel: str,
        request_id: str = "",
    ) -> Projected:
        """One page of ``paginator`` (a DRF paginator: it remembers the cursor), projected."""
        rows = paginator.paginate_queryset(self._rows, request, view=view)
        return self._project(list(rows), channel=channel, request_id=request_id)

    def compile_sql(
        self, *columns: str, where: str = "", params: Sequence = ()
    ) -> tuple[str, list]:
        """THE escape, for set-based SQL only: the decision compiled to ``(sql, params)``
        selecting ``columns`` of the rows it allows (raw columns: the caller projects whatever
        it shows). ``where``: an extra SQL condition on the records table, with ``params``."""
        rows = self._rows
        if where:
            # The caller's own SQL text (never input), its values bound as parameters.
            condition = RawSQL(where, list(params), output_field=BooleanField())  # noqa: S611
            rows = rows.filter(condition)
        sql, sql_params = rows.values_list(*columns).query.sql_with_params()
        return sql, list(sql_params)

    def grants_for(self, row: InteractionRecord) -> list[Grant]:
        """The grants through which ``row`` (a counterpart's, read here) reaches the partner."""
        return [
            g
            for g in self.grants
            if getattr(row, g.flag, False)
            and g.counterpart_id == row.submitted_by_id
            and g.kind == row.kind
        ]

    def _purposes(self, row: InteractionRecord) -> set[str]:
        if row.submitted_by_id == self.partner.pk:
            return set()
        return {g.purpose for g in self.grants_for(row)}

    def _project(
        self, rows: list[InteractionRecord], *, channel: str, request_id: str
    ) -> Projected:
        items = [project(row, self) for row in rows]
        self._log(rows, channel=channel, request_id=request_id)
        return Projected(items, [row.pk for row in rows])

    def _log(
        self, rows: Iterable[InteractionRecord], *, channel: str, request_id: str = ""
    ) -> None:
        """One access-log entry per customer whose counterpart data ``rows`` shows."""
        accesses = {}
        for row in rows:
            if row.submitted_by_id == self.partner.pk or not row.customer_id:
                continue
            access = accesses.setdefault(row.customer_id, Access(0, set(), set()))
            access.record_count += 1
            access.purposes.update(self._purposes(row))
            access.categories.add(KINDS[row.kind].category)
        if accesses:
            access_record(
                partner=self.partner, accesses=accesses, channel=channel, request_id=request_id
            )


def visible_records(*, partner: Partner, at: datetime | None = None) -> Visible:
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
    rows = (
        InteractionRecord.objects.unscoped("the visibility decision restricts it by the rule above")
        .select_related("submitted_by")
        .annotate(**annotations)
        .filter(condition)
    )
    return Visible(partner, rows, tuple(grants))


def _partner_ref(partner: Partner) -> dict:
    return {"name": partner.name, "slug": partner.slug, "kind": partner.kind}


def project(record: InteractionRecord, visible: Visible) -> dict:
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
    for grant in visible.grants_for(record):
        fields |= grant.fields
        purposes.add(grant.purpose)
    if "product" in fields and record.gtin:
        out["product"] = {"gtin": record.gtin, "serial": record.serial}
    if "customer" in fields and record.customer_id:
        out["customer"] = str(record.customer_id)
    out["payload"] = {k: v for k, v in record.payload.items() if k in fields}
    out["shared_for"] = sorted(purposes)
    return out


def unit_timeline(
    *, partner: Partner, gtin: str, serial: str, at: datetime | None = None
) -> Visible:
    """Everything ``partner`` may see about one product unit, oldest first."""
    return (
        visible_records(partner=partner, at=at)
        .filter(gtin=gtin, serial=serial)
        .order_by("occurred_at", "id")
    )


def customer_timeline(
    *, partner: Partner, customer_id: UUID, at: datetime | None = None
) -> Visible:
    """Everything ``partner`` may see about one customer, across their units, oldest first."""
    return (
        visible_records(partner=partner, at=at)
        .filter(customer_id=customer_id)
        .order_by("occurred_at", "id")
    )
