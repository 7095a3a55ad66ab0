"""Reads of records for the portal, all through the one visibility decision."""

from __future__ import annotations

from partners.agreements import rules_from
from partners.models import Partner

from .visibility import visible_records


def units(
    *, partner: Partner, gtin: str | None = None, serial: str | None = None, limit: int = 50
) -> list[dict]:
    """Product units ``partner`` may see events of, with how many and the latest: only the
    records whose product it is shown count (a clause that does not share ``product`` lists no
    unit), and the counterpart customers behind the units listed are logged."""
    visible = visible_records(partner=partner)
    if gtin:
        visible = visible.filter(gtin=gtin)
    if serial:
        visible = visible.filter(serial=serial)
    return visible.units(limit=limit)


def record_counts(*, partner: Partner) -> dict[str, int]:
    """Submitted by me; received (counterparts' records I may see now); shared (my records that
    a counterpart may see now, through its own visibility decision)."""
    submitted = visible_records(partner=partner).filter(submitted_by_id=partner.pk).count()
    received = visible_records(partner=partner).exclude(submitted_by_id=partner.pk).count()
    shared = 0
    counterparts = {rule.counterpart_id for rule in rules_from(partner=partner)}
    named = Partner.objects.unscoped("the counterparts an agreement names, asked what they see")
    for other in named.filter(pk__in=counterparts):
        shared += visible_records(partner=other).filter(submitted_by_id=partner.pk).count()
    return {"submitted": submitted, "received": received, "shared": shared}


def dashboard_panel(*, partner: Partner) -> dict:
    return {"template": "portal/records/_panel.html", "counts": record_counts(partner=partner)}
