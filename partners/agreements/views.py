"""Portal pages for sharing agreements: the list, proposing terms, the agreement with its
history, the difference between two versions, and the actions (countersign, reject, withdraw,
suspend, resume, terminate). Admins act; analysts and viewers read. An agreement the partner is
not a party to is a 404 exactly like a missing one."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import FormView, TemplateView, View

from ..models import AgreementVersion, Role, SharingAgreement
from ..portal import PortalMixin
from ..record_kinds import KINDS
from .clauses import (
    MANUFACTURER_TO_RETAILER,
    RETAILER_TO_MANUFACTURER,
    agreement_diff,
    clauses_unchanged,
)
from .forms import ClauseEditorForm, DiffForm, ReasonForm, TerminateForm
from .selectors import agreement_counterparts, agreement_history, agreement_list
from .services import (
    agreement_countersign,
    agreement_propose,
    agreement_reject,
    agreement_resume,
    agreement_suspend,
    agreement_terminate,
    agreement_withdraw,
)

ACTION_LABELS = {
    "agreement.proposed": "proposed",
    "agreement.countersigned": "countersigned",
    "agreement.rejected": "rejected",
    "agreement.withdrawn": "withdrew",
    "agreement.suspended": "suspended the agreement",
    "agreement.resumed": "resumed the agreement",
    "agreement.terminated": "terminated the agreement",
}


def _agreement_or_404(partner, pk):
    """The partner's agreement with its parties and versions; a foreign one is a 404."""
    return get_object_or_404(agreement_list(partner=partner), pk=pk)


def _errors(exc):
    if hasattr(exc, "error_dict"):
        return [m for messages_ in exc.message_dict.values() for m in messages_]
    return exc.messages


def direction_names(agreement):
    """Each direction spelt with the parties' names, e.g. "Nordwind → Brightmart"."""
    m, r = agreement.manufacturer.name, agreement.retailer.name
    return {
        MANUFACTURER_TO_RETAILER: f"{m} → {r}",
        RETAILER_TO_MANUFACTURER: f"{r} → {m}",
    }


def readable(clauses, agreement):
    """Clauses with labels for a table, in catalogue order of kinds."""
    names = direction_names(agreement)
    order = {kind: n for n, kind in enumerate(KINDS)}
    rows = [
        {
            **clause,
            "kind_label": KINDS[clause["kind"]].label,
            "direction_label": names[clause["direction"]],
            "purpose_label": clause["purpose"].replace("_", " "),
        }
        for clause in clauses
    ]
    return sorted(rows, key=lambda c: (order[c["kind"]], c["direction"], c["purpose"]))


class AgreementListView(PortalMixin, TemplateView):
    template_name = "portal/agreements/list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = []
        for agreement in agreement_list(partner=self.partner):
            pending = agreement.pending_version
            rows.append(
                {
                    "agreement": agreement,
                    "counterpart": agreement.counterpart_of(self.partner),
                    "active": agreement.active_version,
                    "pending": pending,
                    "awaiting_us": pending is not None
                    and pending.proposed_by_id != self.partner.pk,
                }
            )
        context["rows"] = rows
        return context


class AgreementProposeView(PortalMixin, FormView):
    """Propose a new agreement (no pk) or a new version of an existing one (pk)."""

    template_name = "portal/agreements/propose.html"
    form_class = ClauseEditorForm
    required_role = Role.ADMIN

    def _load(self):
        pk = self.kwargs.get("pk")
        return None if pk is None else _agreement_or_404(self.partner, pk)

    def get(self, request, *args, **kwargs):
        self.agreement = self._load()
        if self.agreement and self.agreement.status == SharingAgreement.Status.TERMINATED:
            return self._terminated()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.agreement = self._load()
        if self.agreement and self.agreement.status == SharingAgreement.Status.TERMINATED:
            return self._terminated()
        if "add_row" in request.POST:
            form = ClauseEditorForm.with_another_row(
                request.POST, request.POST["add_row"], **self._form_kwargs()
            )
            return self.render_to_response(self.get_context_data(form=form))
        return super().post(request, *args, **kwargs)

    def _terminated(self):
        messages.error(
            self.request,
            "This agreement is terminated. Propose a new agreement to share again.",
        )
        return redirect("portal:agreement-detail", pk=self.agreement.pk)

    def _form_kwargs(self):
        if self.agreement is None:
            return {
                "partner": self.partner,
                "counterparts": agreement_counterparts(partner=self.partner),
            }
        base = self.agreement.pending_version or self.agreement.active_version
        return {
            "partner": self.partner,
            "counterpart": self.agreement.counterpart_of(self.partner),
            "clauses": base.clauses if base else (),
            "purchase_points": base.purchase_points
            if base
            else AgreementVersion.PurchasePoints.ONE,
        }

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), **self._form_kwargs()}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["agreement"] = self.agreement
        context["choose_counterpart"] = self.agreement is None
        if self.agreement is not None:
            context["counterpart"] = self.agreement.counterpart_of(self.partner)
            context["pending"] = self.agreement.pending_version
        return context

    def form_valid(self, form):
        counterpart = (
            form.cleaned_data["counterpart"]
            if self.agreement is None
            else self.agreement.counterpart_of(self.partner)
        )
        try:
            version = agreement_propose(
                proposer=self.partner,
                counterpart=counterpart,
                clauses=form.cleaned_data["clauses"],
                actor=self.request.user,
                note=form.cleaned_data["note"],
                purchase_points=form.cleaned_data["purchase_points"],
            )
        except ValidationError as exc:
            for message in _errors(exc):
                form.add_error(None, message)
            return self.form_invalid(form)
        messages.success(
            self.request,
            f"Version {version.number} was proposed to {counterpart.name}. It applies once "
            f"{counterpart.name} countersigns it.",
        )
        return redirect("portal:agreement-detail", pk=version.agreement_id)


class AgreementDetailView(PortalMixin, TemplateView):
    template_name = "portal/agreements/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        agreement = _agreement_or_404(self.partner, self.kwargs["pk"])
        active, pending = agreement.active_version, agreement.pending_version
        history = [
            {
                "event": event,
                "what": "replaced"
                if event.detail.get("replaced_by")
                else ACTION_LABELS.get(event.action, event.action),
            }
            for event in agreement_history(partner=self.partner, agreement=agreement)
        ]
        context.update(
            agreement=agreement,
            counterpart=agreement.counterpart_of(self.partner),
            active=active,
            active_clauses=readable(active.clauses, agreement) if active else [],
            pending=pending,
            pending_clauses=readable(pending.clauses, agreement) if pending else [],
            pending_is_ours=pending is not None and pending.proposed_by_id == self.partner.pk,
            versions=list(agreement.versions.all()),
            history=history,
            we_suspended=agreement.suspended_by_id == self.partner.pk,
            is_open=agreement.status != SharingAgreement.Status.TERMINATED,
            reason_form=ReasonForm(),
            terminate_form=TerminateForm(),
        )
        return context


class AgreementDiffView(PortalMixin, TemplateView):
    """The difference between two versions; by default the version in force and the pending
    proposal (or, without a proposal, the version before the one in force)."""

    template_name = "portal/agreements/diff.html"

    def get(self, request, *args, **kwargs):
        agreement = _agreement_or_404(self.partner, kwargs["pk"])
        versions = {v.number: v for v in agreement.versions.all()}
        numbers = sorted(versions)
        default_from, default_to = self._defaults(agreement, numbers)
        if "from" in request.GET or "to" in request.GET:
            form = DiffForm(
                {
                    "from": request.GET.get("from", default_from),
                    "to": request.GET.get("to", default_to),
                },
                numbers=numbers,
            )
            if not form.is_valid():
                context = self.get_context_data(agreement=agreement, form=form, diff=None)
                return self.render_to_response(context, status=400)
            old_n, new_n = form.cleaned_data["from"], form.cleaned_data["to"]
        else:
            old_n, new_n = default_from, default_to
            form = DiffForm(initial={"from": old_n, "to": new_n}, numbers=numbers)
        old, new = versions.get(old_n), versions.get(new_n)
        diff = agreement_diff(old, new) if new is not None else None
        context = self.get_context_data(
            agreement=agreement,
            form=form,
            old=old,
            new=new,
            diff=self._readable(diff, agreement) if diff else None,
            unchanged=readable(clauses_unchanged(old, new), agreement) if new else [],
        )
        return self.render_to_response(context)

    @staticmethod
    def _defaults(agreement, numbers):
        active, pending = agreement.active_version, agreement.pending_version
        if pending is not None:
            return (active.number if active else 0), pending.number
        if active is not None:
            earlier = [n for n in numbers if n < active.number]
            return (earlier[-1] if earlier else 0), active.number
        if numbers:
            return (numbers[-2] if len(numbers) > 1 else 0), numbers[-1]
        return 0, None

    @staticmethod
    def _readable(diff, agreement):
        names = direction_names(agreement)
        changed = [
            {
                **change,
                "kind_label": KINDS[change["clause"][0]].label,
                "purpose_label": change["clause"][1].replace("_", " "),
                "direction_label": names[change["clause"][2]],
            }
            for change in diff["changed"]
        ]
        return {
            "added": readable(diff["added"], agreement),
            "removed": readable(diff["removed"], agreement),
            "changed": changed,
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["counterpart"] = kwargs["agreement"].counterpart_of(self.partner)
        return context


class AgreementActionView(PortalMixin, View):
    """POST only: countersign, reject or withdraw the pending version (the form names the
    version the admin reviewed, so a proposal replaced in the meantime is not signed blindly),
    or suspend, resume or terminate the agreement."""

    required_role = Role.ADMIN
    action = None
    http_method_names = ["post"]

    def post(self, request, pk):
        agreement = self.get_scoped_or_404(SharingAgreement, pk=pk)
        try:
            done = getattr(self, f"do_{self.action}")(request, agreement)
        except ValidationError as exc:
            for message in _errors(exc):
                messages.error(request, message)
            return redirect("portal:agreement-detail", pk=agreement.pk)
        messages.success(request, done)
        return redirect("portal:agreement-detail", pk=agreement.pk)

    def _reviewed_version(self, request, agreement):
        pending = agreement.versions.filter(status=AgreementVersion.Status.PROPOSED).first()
        number = request.POST.get("version", "")
        if pending is None or str(pending.number) != number:
            raise ValidationError(
                "The proposal changed since the page was opened; review the current one."
            )
        return pending

    def do_countersign(self, request, agreement):
        version = self._reviewed_version(request, agreement)
        agreement_countersign(version=version, partner=self.partner, actor=request.user)
        return f"You countersigned version {version.number}; its clauses apply from now on."

    def do_reject(self, request, agreement):
        version = self._reviewed_version(request, agreement)
        form = ReasonForm(request.POST)
        if not form.is_valid():
            raise ValidationError(_form_messages(form))
        agreement_reject(
            version=version,
            partner=self.partner,
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
        return f"You rejected version {version.number}."

    def do_withdraw(self, request, agreement):
        version = self._reviewed_version(request, agreement)
        agreement_withdraw(version=version, partner=self.partner, actor=request.user)
        return f"You withdrew version {version.number}."

    def do_suspend(self, request, agreement):
        form = ReasonForm(request.POST)
        if not form.is_valid():
            raise ValidationError(_form_messages(form))
        agreement_suspend(
            agreement=agreement,
            partner=self.partner,
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
        return "The agreement is suspended: nothing is shared under it until you resume it."

    def do_resume(self, request, agreement):
        agreement_resume(agreement=agreement, partner=self.partner, actor=request.user)
        return "The agreement is in force again."

    def do_terminate(self, request, agreement):
        form = TerminateForm(request.POST)
        if not form.is_valid():
            raise ValidationError(_form_messages(form))
        agreement_terminate(
            agreement=agreement,
            partner=self.partner,
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
        return "The agreement is terminated."


def _form_messages(form):
    return [m for errors in form.errors.values() for m in errors]
