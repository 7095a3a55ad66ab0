"""The one tenancy entry point, and it fails closed.

Every model a partner can reach is a ``PartnerScopedModel`` and carries a ``tenant_path``: the
lookup from the model to the ``Partner`` that owns it. Its default manager hands out querysets
that refuse to run until they say how they are scoped:

- ``for_partner(partner)`` restricts the rows to what that partner owns;
- ``unscoped(reason)`` takes every partner's rows, and says at the call site why that is right
  (the operator's admin, the reconciliation engine reading both parties of a pair, a task
  running for an id it was given). ``tests/test_tenancy.py`` lists every such call with its
  reason, so a new one is reviewed before it lands.

Anything that reads or writes existing rows — iterating, ``len``, ``bool``, ``get``,
``first``, ``count``, ``exists``, ``aggregate``, ``update``, ``delete``, ``iterator``,
``in_bulk``, ``explain``, and taking the queryset as a subquery (``pk__in=qs``,
``Subquery(qs)``, ``Exists(qs)``) or combining it with another (``|``, ``union``) — raises
``TenancyError`` on a queryset that said neither. Creating rows is not a read and stays open.

Rows reached through an object already in hand (``partner.memberships.all()``, a
``prefetch_related``) are scoped by that object: Django's related managers mark their querysets
with the ``instance`` they start from. Deletion cascades and forward foreign keys use the model's
``_base_manager``, which stays a plain manager.

Django's own machinery builds querysets from the default manager where no partner is at hand
(uniqueness checks, admin list filters, ``dumpdata``); it runs inside ``unscoped_block(reason)``
with the reason stated where it is entered.

Views, serializers and tasks reach partner data only through ``for_partner``; the API's base
viewset and the portal's mixin call it for them, and an object outside the partner's reach is a
404 exactly like a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from django.db import models
from django.db.models import Q
from django.db.models.query import RawQuerySet
from django.db.models.sql import Query

if TYPE_CHECKING:
    from .models import Partner


class TenancyError(RuntimeError):
    """A partner-scoped query was attempted without a partner."""


def require_partner(partner: Partner | None, asked: str) -> None:
    """Fail closed: ``asked`` (what was queried) needs a saved Partner."""
    if partner is None or getattr(partner, "pk", None) is None:
        raise TenancyError(f"{asked} queried without a partner")
    if partner._meta.label != "partners.Partner":
        raise TenancyError(f"{partner!r} is not a Partner")


def _require_reason(reason):
    if not isinstance(reason, str):
        raise TypeError("unscoped() needs the reason every partner's rows are meant, as a string")
    if not reason.strip():
        raise ValueError("unscoped() needs the reason every partner's rows are meant")


@dataclass(frozen=True)
class Scope:
    """How a query was scoped: to one partner, or to every partner for a stated reason."""

    partner_id: uuid.UUID | None = None
    reason: str = ""


# Django builds a fresh query of the outer query's class for ``exclude()`` across a multi-valued
# relation and runs it as NOT EXISTS inside the outer query: it only filters the outer rows,
# which are checked themselves.
_INSIDE_ANOTHER_QUERY = Scope(reason="a condition Django builds inside the query it filters")

_block_reason: ContextVar[str | None] = ContextVar("partner_tenancy_unscoped_block", default=None)


@contextmanager
def unscoped_block(reason: str) -> Iterator[None]:
    """Let Django's own machinery, which builds querysets from the default manager where no
    partner is at hand, read every partner's rows inside the block. Say why in ``reason``."""
    _require_reason(reason)
    token = _block_reason.set(reason)
    try:
        yield
    finally:
        _block_reason.reset(token)


class PartnerScopedQuery(Query):
    """The SQL query of a partner-scoped queryset. It carries the queryset's ``scope``, so that a
    copy taken from it as a subquery (``Subquery(qs)``, ``Exists(qs)``, ``pk__in=qs``) is checked
    when it is put into another query, exactly like the queryset itself."""

    scope = _INSIDE_ANOTHER_QUERY

    def resolve_expression(self, query: Query, *args: Any, **kwargs: Any) -> Query:
        _require_scope(self, "used as a subquery")
        return super().resolve_expression(query, *args, **kwargs)


def _require_scope(query, doing):
    if getattr(query, "scope", None) is not None:
        return
    if _block_reason.get() is not None:
        return
    if query.is_empty():  # ``none()``: there is nothing to show
        return
    name = query.model.__name__ if query.model is not None else "A partner-scoped model"
    raise TenancyError(
        f"{name} {doing} without a partner: call for_partner(partner), or unscoped(reason) "
        "where every partner's rows are meant"
    )


class PartnerScopedQuerySet(models.QuerySet):
    """A queryset that runs only once it says how it is scoped (see the module docstring)."""

    def __init__(
        self,
        model: type[models.Model] | None = None,
        query: Query | None = None,
        using: str | None = None,
        hints: dict[str, Any] | None = None,
    ) -> None:
        if query is None:
            query = PartnerScopedQuery(model)
            query.scope = _scope_of_hints(hints)
        super().__init__(model=model, query=query, using=using, hints=hints)

    def for_partner(self, partner: Partner) -> Self:
        require_partner(partner, self.model.__name__)
        # A row that belongs to two partners at once (an agreement, a discrepancy) names the
        # lookup to each party in ``tenant_paths``: both reach it, nobody else.
        paths = getattr(self.model, "tenant_paths", None) or (
            getattr(self.model, "tenant_path", None),
        )
        if not all(paths):
            raise TenancyError(f"{self.model.__name__} declares no tenant_path")
        either = Q()
        for path in paths:
            either |= Q(**{path: partner.pk})
        scoped = self.filter(either)
        scoped.query.scope = Scope(partner_id=partner.pk)
        return scoped

    def unscoped(self, reason: str) -> Self:
        """Every row, whatever partner owns it. ``reason`` says why that is right here."""
        _require_reason(reason)
        clone = self._chain()
        clone.query.scope = Scope(reason=reason)
        return clone

    @property
    def scope(self) -> Scope | None:
        """How this queryset was scoped (a ``Scope``), or None if it was not."""
        return getattr(self.query, "scope", None)

    def _require(self, doing):
        _require_scope(self.query, doing)

    def _add_hints(self, **hints):
        super()._add_hints(**hints)
        if self.scope is None:
            self.query.scope = _scope_of_hints(hints)

    # Every way of running the query goes through one of these.

    def _fetch_all(self):
        if self._result_cache is None:
            self._require("read")
        super()._fetch_all()

    def __repr__(self) -> str:
        if self._result_cache is None and self.scope is None and _block_reason.get() is None:
            return f"<{type(self).__name__} of {self.model.__name__}, not scoped to a partner>"
        return super().__repr__()

    def iterator(self, chunk_size: int | None = None) -> Iterator[Any]:
        self._require("read")
        return super().iterator(chunk_size)

    async def aiterator(self, chunk_size: int = 2000) -> AsyncIterator[Any]:
        self._require("read")
        async for row in super().aiterator(chunk_size):
            yield row

    def count(self) -> int:
        self._require("counted")
        return super().count()

    def exists(self) -> bool:
        self._require("read")
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._require("aggregated")
        return super().aggregate(*args, **kwargs)

    def in_bulk(
        self, id_list: Iterable[Any] | None = None, *, field_name: str = "pk"
    ) -> dict[Any, models.Model]:
        self._require("read")
        return super().in_bulk(id_list, field_name=field_name)

    def contains(self, obj: models.Model) -> bool:
        self._require("read")
        return super().contains(obj)

    def explain(self, *, format: str | None = None, **options: Any) -> str:
        self._require("explained")
        return super().explain(format=format, **options)

    def update(self, **kwargs: Any) -> int:
        self._require("updated")
        return super().update(**kwargs)

    update.alters_data = True

    def _update(self, values):
        self._require("updated")
        return super()._update(values)

    _update.alters_data = True
    _update.queryset_only = False

    def delete(self) -> tuple[int, dict[str, int]]:
        self._require("deleted")
        return super().delete()

    delete.alters_data = True
    delete.queryset_only = True

    def raw(
        self,
        raw_query: str,
        params: Any = (),
        translations: dict[str, str] | None = None,
        using: str | None = None,
    ) -> RawQuerySet:
        # Raw SQL ignores ``for_partner``'s filter: only a named unscoped read may run it.
        if (self.scope is None or self.scope.partner_id is not None) and not _block_reason.get():
            raise TenancyError(f"{self.model.__name__}.raw() needs unscoped(reason)")
        return super().raw(raw_query, params, translations, using)

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Query:
        self._require("used as a subquery")
        return super().resolve_expression(*args, **kwargs)

    # A queryset combined into this one brings its own rows: it must be scoped too.

    def _combined(self, others, how):
        for other in others:
            if isinstance(other, models.QuerySet):
                _require_scope(other.query, how)

    def __and__(self, other: models.QuerySet) -> Self:
        self._combined([other], "combined with &")
        return super().__and__(other)

    def __or__(self, other: models.QuerySet) -> Self:
        self._combined([other], "combined with |")
        return super().__or__(other)

    def __xor__(self, other: models.QuerySet) -> Self:
        self._combined([other], "combined with ^")
        return super().__xor__(other)

    def _combinator_query(self, combinator, *other_qs, all=False):
        self._combined(other_qs, f"combined by {combinator}()")
        return super()._combinator_query(combinator, *other_qs, all=all)


def _scope_of_hints(hints):
    # Django's related managers mark their querysets with the instance they start from
    # (``partner.memberships``, ``prefetch_related``), and filter by it: rows reached through
    # an object already in hand are scoped by that object.
    instance = (hints or {}).get("instance")
    if instance is None:
        return None
    return Scope(reason=f"reached through a {instance._meta.label} in hand")


PartnerScopedManager = models.Manager.from_queryset(PartnerScopedQuerySet)


class PartnerScopedModel(models.Model):
    """A model whose rows belong to partners: its default manager is partner-scoped and fails
    closed. Declare ``tenant_path`` (or ``tenant_paths`` for a row two partners share)."""

    objects = PartnerScopedManager()

    class Meta:
        abstract = True

    # Django checks uniqueness (``validate_unique``, ``validate_constraints``, hence ModelForms
    # and ``full_clean``) through the default manager. A unique constraint holds across all rows,
    # so the check reads across partners too; it learns only whether a clashing row exists,
    # which the database's own constraint would tell on insert anyway.

    def validate_unique(self, exclude: Collection[str] | None = None) -> None:
        with unscoped_block("uniqueness holds across every partner's rows, like the constraint"):
            return super().validate_unique(exclude)

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        with unscoped_block("uniqueness holds across every partner's rows, like the constraint"):
            return super().validate_constraints(exclude)
