"""Reads of records for the portal, all through the one visibility decision."""

from django.db.models import Count, Max

from partners.agreements import rules_from
from partners.models import Partner

from .visibility import visible_records


def units(*, partner, gtin=None, serial=None, limit=50):
    """Product units ``partner`` may see events of, with how many and the latest."""
    visible = visible_records(partner=partner).exclude(gtin="")
    if gtin:
        visible = visible.filter(gtin=gtin)
    if serial:
        visible = visible.filter(serial=serial)
    return list(
        visible.queryset.order_by()
        .values("gtin", "serial")
        .annotate(events=Count("id"), last=Max("occurred_at"))
        .order_by("-last")[:limit]
    )


def record_counts(*, partner):
    """Submitted by me; received (counterparts' records I may see now); shared (my records that
    a counterpart may see now, through its own visibility decision)."""
    submitted = visible_records(partner=partner).filter(submitted_by_id=partner.pk).queryset.count()
    received = visible_records(partner=partner).exclude(submitted_by_id=partner.pk).queryset.count()
    shared = 0
    counterparts = {rule.counterpart_id for rule in rules_from(partner=partner)}
    # Unscoped on purpose: the counterparts an active agreement names, to ask their visibility.
    for other in Partner.objects.unscoped().filter(pk__in=counterparts):
        shared += visible_records(partner=other).filter(submitted_by_id=partner.pk).queryset.count()
    return {"submitted": submitted, "received": received, "shared": shared}


def dashboard_panel(*, partner):
    return {"template": "portal/records/_panel.html", "counts": record_counts(partner=partner)}
