"""The hook the customer dashboard calls (``settings.CUSTOMER_PROMPTS_PROVIDERS``): consent/
cannot import telemetry/, so it imports this function by its dotted path."""

from .models import CustomerPrompt


def pending_for_customer(customer=None, *, customer_id=None):
    """The customer's pending prompts (by ``customer`` or ``customer_id``) as plain dicts:
    {kind, id, text, created_at, accept_url, decline_url}; the URLs take a POST (with CSRF token)."""
    from django.urls import reverse

    customer_id = customer_id or getattr(customer, "pk", None)

    return [
        {
            "kind": "service_check",
            "id": p.pk,
            "text": p.text,
            "created_at": p.created_at,
            "accept_url": reverse("telemetry:prompt-decide", args=[p.pk, "accept"]),
            "decline_url": reverse("telemetry:prompt-decide", args=[p.pk, "decline"]),
        }
        for p in CustomerPrompt.objects.filter(customer_id=customer_id, status="pending").order_by(
            "created_at"
        )
    ]
