"""Signed webhooks: partners register HTTPS endpoints for event types; the layers above emit
events that name their subject; workers deliver them, signed, with back-off, building each
attempt's data through the owning layer's decision (``payloads``).

Higher layers call ``webhook_emit``, register a builder per event type with
``payload_builder`` and may connect to ``signals.webhook_acknowledged``; receivers (and the
tests) verify deliveries with ``verify_signature``.
"""

from .payloads import NoBuilder, event_data, payload_builder
from .selectors import delivery_attempts, delivery_list, endpoint_list, webhook_subscribed
from .services import (
    MAX_ATTEMPTS,
    IssuedEndpoint,
    backoff,
    delivery_body,
    delivery_redeliver,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_set_active,
    jsonable,
    webhook_deliver,
    webhook_emit,
    webhook_ping,
    webhooks_enqueue_due,
)
from .signals import webhook_acknowledged
from .signing import (
    ACK_HEADER,
    SIGNATURE_HEADER,
    ack_signature,
    signature_header,
    verify_ack,
    verify_signature,
)

__all__ = [
    "ACK_HEADER",
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "IssuedEndpoint",
    "NoBuilder",
    "ack_signature",
    "backoff",
    "delivery_attempts",
    "delivery_body",
    "delivery_list",
    "delivery_redeliver",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_list",
    "endpoint_rotate_secret",
    "endpoint_set_active",
    "event_data",
    "jsonable",
    "payload_builder",
    "signature_header",
    "verify_ack",
    "verify_signature",
    "webhook_acknowledged",
    "webhook_deliver",
    "webhook_emit",
    "webhook_ping",
    "webhook_subscribed",
    "webhooks_enqueue_due",
]
