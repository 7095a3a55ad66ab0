"""What a webhook says is built when it is sent, not when it is emitted.

An event stores its ``subject`` (what it is about: record refs, a discrepancy id, a notice id)
and never the data it carries. Each event type has one builder, registered here by the layer
that owns that data (``payload_builder``); ``event_data`` calls it at every attempt, for the
delivery log and for the portal, so that the data goes through that layer's own decision at that
moment — projected, logged in the customer's access log, and gone once a consent is withdrawn
or an agreement ends. An event type without a builder cannot be sent (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable

from ..models import WEBHOOK_PING, WebhookEvent, WebhookEventType

# builder(partner=, subject=, channel=, request_id=) -> the event's data, or None when the
# partner may see none of it now.
Builder = Callable[..., dict | None]
_BUILDERS: dict[str, Builder] = {}


class NoBuilder(LookupError):
    """An event type that nobody registered a payload builder for."""


def payload_builder(*event_types: str) -> Callable[[Builder], Builder]:
    """Register the decorated function as the builder of ``event_types``."""

    def register(builder: Builder) -> Builder:
        for event_type in event_types:
            if event_type not in WebhookEventType.values and event_type != WEBHOOK_PING:
                raise ValueError(f"Unknown webhook event type {event_type!r}.")
            _BUILDERS[event_type] = builder
        return builder

    return register


def registered() -> dict[str, Builder]:
    """Every event type with its builder (the tests check that each type has one)."""
    return dict(_BUILDERS)


def event_data(event: WebhookEvent, *, channel: str, request_id: str = "") -> dict | None:
    """The data ``event`` carries for its partner now, or None when nothing of it is shared
    any more. ``channel``: where it is shown (``webhook``, ``api``, ``portal``), for the
    access log."""
    builder = _BUILDERS.get(event.event_type)
    if builder is None:
        raise NoBuilder(f"No payload builder is registered for {event.event_type!r}.")
    return builder(
        partner=event.partner, subject=event.subject, channel=channel, request_id=request_id
    )


@payload_builder(WEBHOOK_PING)
def _ping(*, partner, subject, channel, request_id=""):
    return subject
