"""Portal pages: fleet health, a device with its charts, the signal queue, service rules; and
the customer's answer to a prompt (the dashboard posts here)."""

from datetime import datetime, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views import View

from consent.dashboard.views import signed_in_customer
from partners.models import Role
from partners.portal import PortalMixin

from . import selectors, services
from .catalogue import METRICS
from .charts import chart
from .forms import RuleForm
from .models import CustomerPrompt, Device, ServiceSignal
from .rules import describe


class TelemetryPortal(PortalMixin, View):
    def render(self, template, context, status=200):
        return render(
            self.request,
            template,
            {"partner": self.partner, "membership": self.membership, **context},
            status=status,
        )


class FleetView(TelemetryPortal):
    """Fleet health by product model."""

    def get(self, request):
        return self.render(
            "portal/telemetry/fleet.html",
            {
                "models": selectors.fleet_health(partner=self.partner),
                "devices": selectors.device_list(partner=self.partner)[:200],
            },
        )


def _when(value, default):
    if not value:
        return default
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return default
    return moment if moment.tzinfo else timezone.make_aware(moment, timezone.UTC)


class DeviceView(TelemetryPortal):
    """One device: hourly charts over ?from=&to= (default: the last 7 days of its data)."""

    def get(self, request, serial):
        try:
            device = selectors.device_get(partner=self.partner, serial=serial)
        except Device.DoesNotExist as exc:
            raise Http404 from exc
        anchor = device.last_seen_at or timezone.now()
        end = _when(request.GET.get("to"), anchor + timedelta(hours=1))
        start = _when(request.GET.get("from"), end - timedelta(days=7))
        if start >= end:
            start = end - timedelta(days=7)
        series = selectors.device_series(partner=self.partner, device=device, start=start, end=end)
        charts = [chart(m, METRICS.get(m, m), s, start, end) for m, s in sorted(series.items())]
        span = end - start
        zoom = {
            "in": (start + span / 4, end - span / 4),
            "out": (start - span / 2, end + span / 2),
            "earlier": (start - span, start),
            "later": (end, end + span),
        }
        return self.render(
            "portal/telemetry/device.html",
            {
                "device": device,
                "charts": charts,
                "start": start,
                "end": end,
                "zoom": {k: (a.isoformat(), b.isoformat()) for k, (a, b) in zoom.items()},
                "signals": device.signals.select_related("rule")[:50],
            },
        )


class SignalsView(TelemetryPortal):
    """The signal queue: live signals first; acknowledge, resolve or dismiss."""

    def get(self, request):
        status = request.GET.get("status") or None
        if status not in (None, *ServiceSignal.Status.values):
            status = None
        signals = selectors.signal_list(partner=self.partner, status=status)[:300]
        return self.render(
            "portal/telemetry/signals.html",
            {"signals": signals, "status": status, "statuses": ServiceSignal.Status.choices},
        )


class SignalActionView(TelemetryPortal):
    required_role = Role.ANALYST

    def post(self, request, pk, action):
        signal = get_object_or_404(selectors.signal_list(partner=self.partner), pk=pk)
        try:
            services.signal_transition(signal=signal, action=action)
            messages.success(request, f"SIG-{pk}: done.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("telemetry:signals")


class RulesView(TelemetryPortal):
    """The manufacturer's service rules and a form for a new one."""

    def get(self, request, form=None):
        rules = [
            (r, [describe(c) for c in r.conditions])
            for r in selectors.rule_list(partner=self.partner)
        ]
        return self.render(
            "portal/telemetry/rules.html",
            {"rules": rules, "form": form or RuleForm()},
            status=400 if form is not None else 200,
        )

    def post(self, request):
        if self.membership.role == Role.VIEWER:
            return self.render("portal/forbidden.html", {"required_role": "Analyst"}, status=403)
        form = RuleForm(request.POST)
        if form.is_valid():
            try:
                services.rule_create(partner=self.partner, **form.cleaned_data)
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("conditions", message)
            else:
                messages.success(request, "The rule is active.")
                return redirect("telemetry:rules")
        return self.get(request, form=form)


class RuleActiveView(TelemetryPortal):
    required_role = Role.ANALYST

    def post(self, request, pk, action):
        rule = get_object_or_404(selectors.rule_list(partner=self.partner), pk=pk)
        if action not in ("activate", "deactivate"):
            raise Http404
        services.rule_set_active(rule=rule, active=action == "activate")
        messages.success(request, f"{rule.name}: {'on' if rule.active else 'off'}.")
        return redirect("telemetry:rules")


class PromptDecideView(View):
    """The customer's answer to a prompt, posted from the dashboard."""

    def post(self, request, pk, action):
        customer = signed_in_customer(request)
        if customer is None:
            return redirect("dashboard:sign-in")
        prompt = get_object_or_404(CustomerPrompt, pk=pk, customer=customer)
        if action not in ("accept", "decline"):
            raise Http404
        services.prompt_decide(prompt=prompt, accept=action == "accept")
        return redirect("dashboard:overview")
