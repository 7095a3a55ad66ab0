"""Portal pages for records: search, counts, and CSV upload."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from consent import identity
from consent.selectors import customer_by_identifier
from partners.models import Role
from partners.portal import PortalMixin
from partners.record_kinds import KINDS

from . import selectors, services
from .csv_upload import error_report
from .gtin import normalise_gtin
from .models import RecordUpload


class RecordsPortal(PortalMixin, View):
    def render(self, template, context):
        return render(
            self.request,
            template,
            {"partner": self.partner, "membership": self.membership, **context},
        )


class SearchView(RecordsPortal):
    """One box: a GTIN, a serial number, or a customer's e-mail, phone or loyalty number."""

    def get(self, request):
        q = (request.GET.get("q") or "").strip()[:320]
        context = {"q": q, "units": None, "customer": None, "kinds": KINDS}
        if q:
            context.update(_search(self.partner, q))
        else:
            context["counts"] = selectors.record_counts(partner=self.partner)
        return self.render("portal/records/search.html", context)


def _search(partner, q):
    if "@" in q or q.startswith("+"):
        kind = "email" if "@" in q else "phone"
        try:
            parsed = identity.parse_identifier(kind=kind, value=q)
        except ValidationError as exc:
            return {"error": " ".join(exc.messages)}
        customer = customer_by_identifier(parsed)
        return {"customer_ref": customer.pk if customer else None, "searched": kind}
    units = []
    if re.fullmatch(r"\d{8}|\d{12,14}", q):
        try:
            units = selectors.units(partner=partner, gtin=normalise_gtin(q))
        except ValueError as exc:
            return {"error": f"GTIN {exc}"}
    if not units:
        units = selectors.units(partner=partner, serial=q)
    if not units and re.fullmatch(r"[A-Za-z0-9\s-]{4,44}", q):
        try:
            parsed = identity.parse_identifier(kind="loyalty", value=q, programme_id=partner.pk)
            customer = customer_by_identifier(parsed)
            if customer:
                return {"customer_ref": customer.pk, "searched": "loyalty"}
        except ValidationError:
            pass
    return {"units": units}


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, first line names the columns; up to 10,000 rows or 5 MiB.",
    )

    def clean_file(self):
        file = self.cleaned_data["file"]
        if not file.name.lower().endswith(".csv") and file.content_type not in (
            "text/csv",
            "application/vnd.ms-excel",
        ):
            raise forms.ValidationError("Upload a .csv file.")
        return file


class UploadView(RecordsPortal):
    required_role = Role.ANALYST

    def get(self, request):
        uploads = RecordUpload.objects.for_partner(self.partner).defer("content")[:20]
        return self.render(
            "portal/records/upload.html", {"form": UploadForm(), "uploads": uploads, "kinds": KINDS}
        )

    def post(self, request):
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            file = form.cleaned_data["file"]
            try:
                upload = services.upload_create(
                    partner=self.partner,
                    user=request.user,
                    filename=file.name,
                    content=file.read(services.MAX_BYTES + 1),
                )
            except ValidationError as exc:
                form.add_error("file", exc.messages)
            else:
                return redirect("records:upload-status", pk=upload.pk)
        uploads = RecordUpload.objects.for_partner(self.partner).defer("content")[:20]
        return render(
            request,
            "portal/records/upload.html",
            {"form": form, "uploads": uploads, "kinds": KINDS, "partner": self.partner},
            status=400,
        )


class UploadStatusView(RecordsPortal):
    def get(self, request, pk):
        upload = self.get_scoped_or_404(RecordUpload, pk=pk)
        return self.render(
            "portal/records/upload_status.html", {"upload": upload, "errors": upload.errors[:50]}
        )


class UploadErrorsView(RecordsPortal):
    def get(self, request, pk):
        upload = self.get_scoped_or_404(RecordUpload, pk=pk)
        response = HttpResponse(error_report(upload), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="errors-{upload.pk}.csv"'
        return response
