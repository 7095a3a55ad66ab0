"""The one tenancy entry point.

Every model a partner can reach carries a ``tenant_path``: the lookup from the model to the
``Partner`` that owns it. ``for_partner(partner)`` restricts any queryset of such a model to what
that partner owns, and fails closed: without a partner it raises instead of returning everything.
The unrestricted path is spelled ``unscoped()`` so that every use of it can be found and justified
(admin, reconciliation, migrations).

Views, serializers and tasks reach partner data only through ``for_partner``; the API's base
viewset and the portal's mixin call it for them, and an object outside the partner's reach is a
404 exactly like a missing one.
"""

from django.db import models
from django.db.models import Q


class TenancyError(RuntimeError):
    """A partner-scoped query was attempted without a partner."""


def require_partner(partner, asked):
    """Fail closed: ``asked`` (what was queried) needs a saved Partner."""
    if partner is None or getattr(partner, "pk", None) is None:
        raise TenancyError(f"{asked} queried without a partner")
    if partner._meta.label != "partners.Partner":
        raise TenancyError(f"{partner!r} is not a Partner")


class PartnerScopedQuerySet(models.QuerySet):
    def for_partner(self, partner):
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
        return self.filter(either)

    def unscoped(self):
        """Every row, whatever partner owns it. Say at the call site why that is right."""
        return self.all()


PartnerScopedManager = models.Manager.from_queryset(PartnerScopedQuerySet)
