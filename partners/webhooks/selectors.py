"""Reads for webhooks, always for one partner."""

from __future__ import annotations

from django.db.models import Count, Max, Q, QuerySet

from ..models import Partner, WebhookAttempt, WebhookDelivery, WebhookEndpoint

WAITING = ["pending", "failed"]


def endpoint_list(*, partner: Partner) -> QuerySet[WebhookEndpoint]:
    """The partner's endpoints, newest first, with how many deliveries wait or were given up and
    when the last one got through."""
    return WebhookEndpoint.objects.for_partner(partner).annotate(
        waiting=Count("deliveries", filter=Q(deliveries__status__in=WAITING)),
        given_up=Count("deliveries", filter=Q(deliveries__status="gave_up")),
        last_delivered_at=Max("deliveries__delivered_at"),
    )


def delivery_list(
    *, partner: Partner, endpoint: WebhookEndpoint | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The partner's deliveries, newest first, with their endpoint and event."""
    deliveries = WebhookDelivery.objects.for_partner(partner).select_related("endpoint", "event")
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries


def delivery_attempts(*, partner: Partner, delivery: WebhookDelivery) -> QuerySet[WebhookAttempt]:
    """The attempts of one delivery, newest first."""
    return WebhookAttempt.objects.for_partner(partner).filter(delivery=delivery)


def webhook_subscribed(*, partner: Partner, event_type: str) -> bool:
    """Does any active endpoint of ``partner`` receive ``event_type``? Lets an emitter skip
    projecting payloads nobody will receive (``webhook_emit`` checks again, and stores nothing
    then)."""
    return (
        WebhookEndpoint.objects.for_partner(partner)
        .filter(active=True, event_types__contains=[event_type])
        .exists()
    )
