"""Portal pages of the two timelines: a product unit's (with the links reconciliation made) and
a customer's."""

from __future__ import annotations

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse

from clearinghouse.records import visibility
from clearinghouse.records.gtin import normalise_gtin
from clearinghouse.records.views import RecordsPortal

from .selectors import attach_links

PAGE = 200


class UnitTimelineView(RecordsPortal):
    def get(self, request: HttpRequest, gtin: str, serial: str) -> HttpResponse:
        try:
            gtin = normalise_gtin(gtin)
        except ValueError as exc:
            raise Http404 from exc
        visible = visibility.unit_timeline(partner=self.partner, gtin=gtin, serial=serial)
        events = visible.read(channel="portal", limit=PAGE)
        attach_links(events, unit=visible if len(events) == PAGE else None)
        return self.render(
            "portal/records/unit.html", {"gtin": gtin, "serial": serial, "events": events}
        )


class CustomerTimelineView(RecordsPortal):
    def get(self, request: HttpRequest, ref: UUID) -> HttpResponse:
        visible = visibility.customer_timeline(partner=self.partner, customer_id=ref)
        events = visible.read(channel="portal", limit=PAGE)
        return self.render("portal/records/customer.html", {"ref": ref, "events": events})
