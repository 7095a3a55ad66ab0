"""Portal pages: the shared discrepancy queue, a discrepancy with its evidence and history, and
the reconciliation runs of the partner's pairs."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from partners.agreements.selectors import pairs_in_force
from partners.models import Partner, Role
from partners.portal import PortalMixin, form_errors_from

from . import selectors, services
from .engine import DESCRIPTIONS, SEVERITY
from .models import KIND_LABELS, Discrepancy, WarrantyTerms
from .tasks import reconcile_pair_task


class FilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Discrepancy.Status.choices]
    )
    kind = forms.ChoiceField(
        required=False, choices=[("", "Any kind")] + [(k, KIND_LABELS[k]) for k in SEVERITY]
    )
    severity = forms.ChoiceField(
        required=False,
        choices=[("", "Any severity"), ("high", "High"), ("medium", "Medium"), ("low", "Low")],
    )
    serial = forms.CharField(required=False, max_length=64)


class TransitionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("resolve", "Resolve"),
            ("dismiss", "Dismiss"),
            ("reopen", "Reopen"),
            ("comment", "Comment"),
        ]
    )
    text = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Why (both parties see it)"
    )


class WarrantyTermsForm(forms.Form):
    gtin = forms.CharField(
        label="GTIN", max_length=14, help_text="8, 12, 13 or 14 digits, as on the records"
    )
    model_name = forms.CharField(label="Product model", max_length=100)
    warranty_months = forms.IntegerField(
        label="Warranty (months)", min_value=1, max_value=WarrantyTerms.MAX_MONTHS
    )


class Base(PortalMixin, View):
    def page(self, template, context, status=200):
        return render(
            self.request,
            template,
            {"partner": self.partner, "membership": self.membership, **context},
            status=status,
        )


class QueueView(Base):
    def get(self, request):
        form = FilterForm(request.GET or {"status": "open"})
        queryset = selectors.discrepancies_visible(partner=self.partner)
        if form.is_valid():
            for name in ("status", "kind", "severity", "serial"):
                if form.cleaned_data[name]:
                    queryset = queryset.filter(**{name: form.cleaned_data[name]})
            if form.cleaned_data["serial"]:
                queryset = selectors.with_unit_shown(queryset, partner=self.partner)
        page = Paginator(queryset.order_by("-opened_at", "-id"), 50).get_page(
            request.GET.get("page")
        )
        selectors.discrepancies_shown(
            partner=self.partner, discrepancies=page.object_list, channel="portal"
        )
        filters = request.GET.copy()  # the page links keep every filter
        filters.pop("page", None)
        return self.page(
            "portal/discrepancies/queue.html",
            {
                "form": form,
                "page": page,
                "descriptions": DESCRIPTIONS,
                "filters": filters.urlencode(),
            },
        )


class DetailView(Base):
    def _discrepancy(self, pk):
        return get_object_or_404(selectors.discrepancies_visible(partner=self.partner), pk=pk)

    def get(self, request, pk, form=None, status=200):
        discrepancy = self._discrepancy(pk)
        selectors.discrepancies_shown(partner=self.partner, discrepancies=[discrepancy])
        evidence = selectors.discrepancy_evidence(
            partner=self.partner, discrepancy=discrepancy, channel="portal"
        )
        return self.page(
            "portal/discrepancies/detail.html",
            {
                "d": discrepancy,
                "evidence": evidence,
                "notes": selectors.discrepancy_history(discrepancy),
                "description": DESCRIPTIONS.get(discrepancy.kind, ""),
                "form": form or TransitionForm(),
            },
            status=status,
        )

    def post(self, request, pk):
        if not self.membership.can_change_data:
            return render(
                request, "portal/forbidden.html", {"required_role": Role.ANALYST.label}, status=403
            )
        discrepancy = self._discrepancy(pk)
        form = TransitionForm(request.POST)
        if not form.is_valid():
            return self.get(request, pk, form=form, status=400)
        try:
            if form.cleaned_data["action"] == "comment":
                services.discrepancy_comment(
                    discrepancy=discrepancy,
                    partner=self.partner,
                    text=form.cleaned_data["text"],
                    user=request.user,
                )
            else:
                services.discrepancy_transition(
                    discrepancy=discrepancy,
                    action=form.cleaned_data["action"],
                    partner=self.partner,
                    reason=form.cleaned_data["text"],
                    user=request.user,
                )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
            return self.get(request, pk, form=form, status=400)
        messages.success(request, "Saved. The other party sees it too.")
        return redirect("reconciliation:detail", pk=discrepancy.pk)


class RunsView(Base):
    def get(self, request):
        return self.page(
            "portal/discrepancies/runs.html", {"runs": selectors.runs_for(partner=self.partner)}
        )

    def post(self, request):
        """Admins ask for a run of their pairs now."""
        if not self.membership.is_admin:
            return render(
                request, "portal/forbidden.html", {"required_role": Role.ADMIN.label}, status=403
            )
        pairs = pairs_in_force(partner=self.partner)
        for manufacturer_id, retailer_id in pairs:
            reconcile_pair_task.delay(str(manufacturer_id), str(retailer_id), "portal", False)
        messages.success(
            request, f"Reconciliation asked for {len(pairs)} pair(s); results appear in a moment."
        )
        return redirect("reconciliation:runs")


class WarrantyTermsView(Base):
    """The manufacturer's warranty terms per product model, and a form to set one (a GTIN
    already listed is updated). A claim on a unit whose registration states no period is
    measured against these."""

    def get(self, request, form=None):
        if self.partner.kind != Partner.Kind.MANUFACTURER:
            return self.page("portal/discrepancies/warranty_terms.html", {"retailer": True})
        return self.page(
            "portal/discrepancies/warranty_terms.html",
            {
                "terms": self.scoped(WarrantyTerms),
                "form": form or WarrantyTermsForm(),
                "default_months": settings.RECON_DEFAULT_WARRANTY_MONTHS,
            },
            status=400 if form is not None else 200,
        )

    def post(self, request):
        if self.partner.kind != Partner.Kind.MANUFACTURER:
            return self.get(request)
        if not self.membership.can_change_data:
            return render(
                request, "portal/forbidden.html", {"required_role": Role.ANALYST.label}, status=403
            )
        form = WarrantyTermsForm(request.POST)
        if form.is_valid():
            try:
                terms = services.warranty_terms_set(
                    manufacturer=self.partner, actor=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(
                    request,
                    f"{terms.model_name}: {terms.warranty_months} months. The next run of each "
                    "of your pairs checks every claim against it.",
                )
                return redirect("reconciliation:warranty-terms")
        return self.get(request, form=form)


class WarrantyTermsDeleteView(Base):
    required_role = Role.ANALYST

    def post(self, request, pk):
        terms = get_object_or_404(self.scoped(WarrantyTerms), pk=pk)
        services.warranty_terms_delete(terms=terms, actor=request.user)
        messages.success(request, f"{terms.model_name}: back to the default period.")
        return redirect("reconciliation:warranty-terms")
