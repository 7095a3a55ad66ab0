"""Portal pages for webhooks: the endpoints with their recent deliveries, registering an endpoint
(its secret shown once), an endpoint's page with its deliveries and actions (test event, rotate
the secret, disable, enable), a delivery's attempts, and manual redelivery. Admins act; analysts
and viewers read. Another partner's endpoint or delivery is a 404 exactly like a missing one."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.generic import FormView, TemplateView, View

from ..models import Role, WebhookDelivery, WebhookEndpoint
from ..portal import PortalMixin, form_errors_from
from .forms import EndpointForm
from .payloads import event_data
from .selectors import delivery_attempts, delivery_list, endpoint_list
from .services import (
    delivery_body,
    delivery_redeliver,
    endpoint_create,
    endpoint_rotate_secret,
    endpoint_set_active,
    webhook_ping,
)
from .signing import SIGNATURE_HEADER

RECENT_DELIVERIES = 50


def _secret_page(request, partner, issued, *, rotated):
    response = render(
        request,
        "portal/webhooks/secret.html",
        {
            "partner": partner,
            "endpoint": issued.endpoint,
            "secret": issued.secret,
            "rotated": rotated,
            "signature_header": SIGNATURE_HEADER,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


class WebhookListView(PortalMixin, TemplateView):
    template_name = "portal/webhooks/list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["endpoints"] = endpoint_list(partner=self.partner)
        deliveries = delivery_list(partner=self.partner).defer("event__subject")
        context["deliveries"] = deliveries[:RECENT_DELIVERIES]
        return context


class WebhookCreateView(PortalMixin, FormView):
    """Register an endpoint. The secret is rendered in the answer to the POST and kept for
    signing only; it is never shown again (rotate it to get a new one)."""

    template_name = "portal/webhooks/form.html"
    form_class = EndpointForm
    required_role = Role.ADMIN

    def form_valid(self, form):
        try:
            issued = endpoint_create(
                partner=self.partner,
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                event_types=form.cleaned_data["event_types"],
                actor=self.request.user,
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        return _secret_page(self.request, self.partner, issued, rotated=False)


class WebhookDetailView(PortalMixin, TemplateView):
    template_name = "portal/webhooks/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        endpoint = get_object_or_404(endpoint_list(partner=self.partner), pk=kwargs["pk"])
        context["endpoint"] = endpoint
        deliveries = delivery_list(partner=self.partner, endpoint=endpoint)
        context["deliveries"] = deliveries.defer("event__subject")[:100]
        return context


class WebhookActionView(PortalMixin, View):
    """POST: ``test`` (send a ping), ``rotate`` (a new secret, shown once), ``disable``,
    ``enable``."""

    required_role = Role.ADMIN
    action = None

    def post(self, request, pk):
        endpoint = self.get_scoped_or_404(WebhookEndpoint, pk=pk)
        try:
            if self.action == "rotate":
                issued = endpoint_rotate_secret(endpoint=endpoint, actor=request.user)
                return _secret_page(request, self.partner, issued, rotated=True)
            if self.action == "test":
                webhook_ping(endpoint=endpoint, actor=request.user)
                messages.success(request, "A test event is on its way; its delivery is below.")
            else:
                endpoint_set_active(
                    endpoint=endpoint, active=self.action == "enable", actor=request.user
                )
                messages.success(
                    request,
                    "The endpoint is enabled."
                    if self.action == "enable"
                    else "The endpoint is disabled: nothing more is sent to it.",
                )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("portal:webhook-detail", pk=endpoint.pk)


class DeliveryDetailView(PortalMixin, TemplateView):
    template_name = "portal/webhooks/delivery.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        delivery = get_object_or_404(delivery_list(partner=self.partner), pk=kwargs["pk"])
        context["delivery"] = delivery
        context["attempts"] = delivery_attempts(partner=self.partner, delivery=delivery)
        # Built now, through the sharing decision (and logged): what an attempt would send.
        data = event_data(delivery.event, channel="portal")
        context["body"] = (
            None
            if data is None
            else json.dumps(
                json.loads(delivery_body(delivery.event, data)),
                indent=2,
                ensure_ascii=False,
            )
        )
        return context


class DeliveryRedeliverView(PortalMixin, View):
    required_role = Role.ADMIN

    def post(self, request, pk):
        delivery = self.get_scoped_or_404(WebhookDelivery, pk=pk)
        try:
            delivery_redeliver(delivery=delivery, actor=request.user)
            messages.success(request, "The delivery is on its way again.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("portal:webhook-delivery", pk=delivery.pk)
