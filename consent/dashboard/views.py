"""The customer's privacy dashboard: passwordless sign-in, overview, consents, receipts, access
log, export and erasure. A customer session holds only the pseudonymous id and an expiry."""

import json
import time

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.module_loading import import_string
from django.views import View
from django.views.decorators.cache import never_cache

from .. import notices, receipts, selectors, services
from ..catalogue import CATEGORIES, PURPOSES
from ..models import ConsentGrant, Receipt
from ..signals import customer_exporting
from .forms import ConsentChangeForm, EraseForm, SignInForm

SESSION_KEY = "consent_customer"
SESSION_UNTIL = "consent_customer_until"


def _client_ip(request):
    return request.META.get("REMOTE_ADDR", "")


def sign_in_customer(request, customer):
    request.session.cycle_key()
    request.session[SESSION_KEY] = str(customer.pk)
    request.session[SESSION_UNTIL] = time.time() + settings.CUSTOMER_SESSION_MINUTES * 60


def signed_in_customer(request):
    customer_id = request.session.get(SESSION_KEY)
    if not customer_id or request.session.get(SESSION_UNTIL, 0) < time.time():
        return None
    return selectors.customer_live(customer_id)


@method_decorator(never_cache, name="dispatch")
class CustomerView(View):
    """Base of the signed-in dashboard pages."""

    def dispatch(self, request, *args, **kwargs):
        self.customer = signed_in_customer(request)
        if self.customer is None:
            request.session.pop(SESSION_KEY, None)
            return redirect("dashboard:sign-in")
        return super().dispatch(request, *args, **kwargs)

    def render(self, template, context=None, **kwargs):
        return render(
            self.request, template, {"customer": self.customer, **(context or {})}, **kwargs
        )


@method_decorator(never_cache, name="dispatch")
class SignInView(View):
    def get(self, request):
        if signed_in_customer(request):
            return redirect("dashboard:overview")
        return render(request, "dashboard/sign_in.html", {"form": SignInForm()})

    def post(self, request):
        form = SignInForm(request.POST)
        if not form.is_valid():
            return render(request, "dashboard/sign_in.html", {"form": form}, status=400)
        try:
            services.magic_link_request(email=form.cleaned_data["email"], ip=_client_ip(request))
        except ValidationError as exc:
            form.add_error("email", exc)
            return render(request, "dashboard/sign_in.html", {"form": form}, status=400)
        except services.RateLimited:
            form.add_error(
                None, "Too many sign-in links were asked for. Please wait an hour and try again."
            )
            return render(request, "dashboard/sign_in.html", {"form": form}, status=429)
        return redirect("dashboard:link-sent")


def link_sent(request):
    return render(request, "dashboard/link_sent.html")


@method_decorator(never_cache, name="dispatch")
class MagicLinkView(View):
    """GET shows a button, POST signs in: mail scanners that follow links do not use them up."""

    def get(self, request, token):
        return render(request, "dashboard/link_confirm.html", {"token": token})

    def post(self, request, token):
        customer = services.magic_link_consume(token=token)
        if customer is None:
            return render(request, "dashboard/link_invalid.html", status=400)
        sign_in_customer(request, customer)
        return redirect("dashboard:overview")


class SignOutView(View):
    def post(self, request):
        request.session.pop(SESSION_KEY, None)
        request.session.pop(SESSION_UNTIL, None)
        return redirect("dashboard:sign-in")


class OverviewView(CustomerView):
    def get(self, request):
        prompts = [
            prompt
            for provider in settings.CUSTOMER_PROMPTS_PROVIDERS
            for prompt in import_string(provider)(customer_id=self.customer.pk)
        ]
        return self.render(
            "dashboard/overview.html",
            {
                "holders": selectors.customer_overview(customer=self.customer),
                "purposes": PURPOSES,
                "prompts": prompts,
            },
        )


class ConsentsView(CustomerView):
    def get(self, request):
        active = {
            row["partner"].pk: row["purposes"]
            for row in selectors.customer_overview(customer=self.customer)
        }
        rows = [
            {
                "partner": partner,
                "purposes": [
                    {
                        "purpose": p,
                        "grant": active.get(partner.pk, {}).get(key),
                        "categories": [CATEGORIES[c] for c in p.default_categories],
                    }
                    for key, p in PURPOSES.items()
                ],
            }
            for partner in selectors.consent_partners(customer=self.customer)
        ]
        history = [
            {"receipt": r, "verified": receipts.verify(r.payload, r.signature, r.key_id)}
            for r in selectors.customer_receipts(customer=self.customer)
        ]
        return self.render(
            "dashboard/consents.html",
            {
                "rows": rows,
                "history": history,
                "withdrawals": notices.customer_withdrawals(customer=self.customer),
            },
        )

    def post(self, request):
        form = ConsentChangeForm(request.POST)
        if not form.is_valid():
            messages.error(request, "That change could not be made: unknown partner or purpose.")
            return redirect("dashboard:consents")
        partners = selectors.consent_partners(customer=self.customer)
        partner = next((p for p in partners if p.pk == form.cleaned_data["partner"]), None)
        if partner is None:
            raise Http404
        purpose = form.cleaned_data["purpose"]
        if form.cleaned_data["action"] == "grant":
            try:
                services.consent_grant(
                    customer=self.customer,
                    grantee=partner,
                    purpose=purpose,
                    source=ConsentGrant.Source.CUSTOMER,
                )
                messages.success(
                    request,
                    f"{partner.name} may now use your data for {PURPOSES[purpose].label.lower()}.",
                )
            except services.DuplicateGrant:
                messages.info(request, "That consent was already given.")
        else:
            grant = selectors.open_grant(customer=self.customer, grantee=partner, purpose=purpose)
            if grant:
                services.consent_revoke(grant=grant, ended_by=ConsentGrant.Ended.CUSTOMER)
            messages.success(
                request,
                f"{partner.name} may no longer use your data for {PURPOSES[purpose].label.lower()}.",
            )
        return redirect("dashboard:consents")


class ReceiptDownloadView(CustomerView):
    def get(self, request, pk):
        receipt = get_object_or_404(Receipt, pk=pk, customer=self.customer)
        response = JsonResponse(receipts.receipt_document(receipt), json_dumps_params={"indent": 2})
        response["Content-Disposition"] = (
            f'attachment; filename="consent-receipt-{receipt.pk}.json"'
        )
        return response


class AccessLogView(CustomerView):
    def get(self, request):
        return self.render(
            "dashboard/access_log.html",
            {"entries": selectors.customer_access_log(customer=self.customer)},
        )


class ExportView(CustomerView):
    """Everything we hold about me, as one JSON document (GDPR Art. 15 and 20)."""

    def get(self, request):
        customer = self.customer
        document = {
            "format": "clearinghouse-export-1",
            "exported_at": timezone.now().isoformat(),
            "subject": str(customer.pk),
            "identifiers": services.identifiers_decrypt(customer),
            "holders": [
                {
                    "partner": row["partner"].name,
                    "categories": [c.key for c in row["holds"]],
                    "purposes": sorted(row["purposes"]),
                }
                for row in selectors.customer_overview(customer=customer)
            ],
            "consents": [
                {
                    "id": str(g.pk),
                    "partner": g.grantee.name,
                    "purpose": g.purpose,
                    "categories": g.categories,
                    "policy_version": g.policy_version,
                    "source": g.source,
                    "collected_by": g.collected_by.name if g.collected_by else None,
                    "evidence": g.evidence,
                    "granted_at": g.granted_at.isoformat(),
                    "expires_at": g.expires_at.isoformat() if g.expires_at else None,
                    "revoked_at": g.revoked_at.isoformat() if g.revoked_at else None,
                    "ended_by": g.ended_by or None,
                }
                for g in selectors.customer_grants(customer=customer)
            ],
            "receipts": [
                receipts.receipt_document(r) for r in selectors.customer_receipts(customer=customer)
            ],
            "access_log": [
                {
                    "partner": e.partner.name,
                    "accessed_at": e.accessed_at.isoformat(),
                    "channel": e.channel,
                    "purposes": e.purposes,
                    "categories": e.categories,
                    "records": e.record_count,
                }
                for e in selectors.customer_access_log(customer=customer, limit=None)
            ],
            "records": [],
        }
        for _, sections in customer_exporting.send(sender=type(customer), customer_id=customer.pk):
            document.update(sections or {})
        response = HttpResponse(
            json.dumps(document, indent=2, ensure_ascii=False, default=str),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="my-clearinghouse-data.json"'
        return response


class EraseView(CustomerView):
    def get(self, request):
        return self.render("dashboard/erase.html", {"form": EraseForm()})

    def post(self, request):
        form = EraseForm(request.POST)
        if not form.is_valid():
            return self.render("dashboard/erase.html", {"form": form}, status=400)
        receipt = services.customer_erase(customer=self.customer)
        request.session.flush()
        return render(
            request,
            "dashboard/erased.html",
            {
                "document": json.dumps(receipts.receipt_document(receipt), indent=2),
                # GDPR Art. 19: who received the data and was told, as known at this moment —
                # the receipt's ``recipients_told``; and, apart, whose consents ended.
                "recipients": notices.customer_erasure_recipients(customer=self.customer),
                "consents_ended_with": receipt.payload.get("consents_ended_with", []),
            },
        )


def receipt_keys(request):
    """The public keys that verify receipts (JWKS)."""
    response = JsonResponse(receipts.jwks())
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=3600"
    return response
