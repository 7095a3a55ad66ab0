"""From a service signal to care: a proactive service request both partners see, and a prompt in
the customer's dashboard — only where the customer consented to service sharing of device data
with a retailer. Without that consent the signal stays the manufacturer's alone.

The prompt goes to the retailer that sold the unit (the latest sale of it that the manufacturer
may see), when the customer consented to tell that retailer; otherwise to the manufacturer's own
service. When the customer accepts, the ``service.signal`` webhook names the signal; what it
says is built when it is sent (``service_signal_data``), from the service request as the
recipient may see it then, so a withdrawn consent stops it and the read is logged."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from clearinghouse.records.visibility import visible_records
from consent import identity
from consent.models import Customer
from consent.selectors import consent_allows
from consent.services import identifiers_decrypt
from partners.agreements.selectors import pairs_in_force
from partners.models import Partner, WebhookEventType
from partners.webhooks import payload_builder, webhook_emit

from .models import CustomerPrompt, Device, ServiceSignal

logger = logging.getLogger(__name__)
SERVICE_SIGNAL = WebhookEventType.SERVICE_SIGNAL.value
DEFAULT_PROMPT = "Your {model} shows signs of a fault ({issue}) — book a free check?"


def device_customer_id(*, device: Device, manufacturer: Partner) -> uuid.UUID | None:
    """The customer of the manufacturer's own warranty registration of this unit, or None."""
    record = (
        InteractionRecord.objects.for_partner(manufacturer)
        .filter(
            kind="warranty_registration",
            gtin=device.gtin,
            serial=device.serial,
            customer__isnull=False,
            tombstoned_at__isnull=True,
        )
        .order_by("-occurred_at")
        .first()
    )
    return record.customer_id if record else None


def _maker(device):
    return Partner.objects.unscoped("the maker of a device in hand").get(pk=device.manufacturer_id)


def consenting_retailers(*, manufacturer: Partner, customer_id: uuid.UUID) -> list[Partner]:
    """The retailers in an agreement with this manufacturer to which the customer consented to
    share device data for service, checked now against the ledger."""
    retailer_ids = [r for _, r in pairs_in_force(partner=manufacturer)]
    in_force = Partner.objects.unscoped("the retailers of the maker's agreements in force")
    retailers = in_force.filter(pk__in=retailer_ids).order_by("name")
    return [
        r
        for r in retailers
        if consent_allows(
            partner=r, customer_id=customer_id, purpose="service", category="telemetry"
        )
    ]


def _customer_reference(customer):
    """An identifier for the customer as the manufacturer may send it: the SHA-256 of a stored
    e-mail or phone number (never a loyalty number: those belong to a retailer's programme)."""
    for ident in identifiers_decrypt(customer):
        if ident["value"] and ident["kind"] in ("email", "phone"):
            return {"kind": ident["kind"], "sha256": identity.prehash(ident["value"])}
    return None


def selling_retailer(*, manufacturer: Partner, device: Device) -> uuid.UUID | None:
    """The retailer of the latest sale of the unit that the manufacturer may see, or None."""
    sales = (
        visible_records(partner=manufacturer)
        .filter(kind="sale", gtin=device.gtin, serial=device.serial)
        .exclude(submitted_by_id=manufacturer.pk)
        .order_by("-occurred_at", "-id")
    )
    for _, submitted_by_id, _, _ in sales.refs():
        return submitted_by_id
    return None


def signal_to_care(*, signal: ServiceSignal) -> CustomerPrompt | None:
    """Called in the transaction that opened the signal. Returns the prompt, or None."""
    device = signal.device
    maker = _maker(device)
    customer_id = device_customer_id(device=device, manufacturer=maker)
    if customer_id is None:
        return None
    retailers = consenting_retailers(manufacturer=maker, customer_id=customer_id)
    if not retailers:
        return None
    customer = Customer.objects.get(pk=customer_id)
    reference = _customer_reference(customer)
    if reference is None:
        logger.info("SIG-%s: the customer has no identifier the maker may send", signal.pk)
        return None
    results = records_ingest(
        partner=maker,
        rows=[
            {
                "external_id": f"SIG-{signal.pk}",
                "kind": "service_request",
                "occurred_at": signal.opened_at.isoformat(),
                "customer": reference,
                "product": {"gtin": device.gtin, "serial": device.serial},
                "payload": {
                    "issue": signal.rule.issue[:200],
                    "status": "open",
                    "proactive": True,
                    "reference": f"SIG-{signal.pk}",
                },
            }
        ],
        max_rows=1,
    )
    if results[0].ref:
        signal.service_request_ref = results[0].ref
        signal.save(update_fields=["service_request_ref"])
    else:
        logger.warning("SIG-%s: service request refused: %s", signal.pk, results[0].errors)
    text = (signal.rule.prompt_text or DEFAULT_PROMPT).format(
        model=device.model_name, issue=signal.rule.issue
    )
    seller = selling_retailer(manufacturer=maker, device=device)
    told = next((r for r in retailers if r.pk == seller), None)  # None: the maker's service
    prompt, _ = CustomerPrompt.objects.get_or_create(
        signal=signal,
        defaults={"customer_id": customer_id, "retailer": told, "text": text[:300]},
    )
    return prompt


def prompt_recipient(prompt: CustomerPrompt) -> Partner:
    """Who books the visit: the retailer the prompt names, or the manufacturer's service."""
    return prompt.retailer if prompt.retailer_id else _maker(prompt.signal.device)


def notify_retailer(*, prompt: CustomerPrompt) -> None:
    """The customer accepted: tell the retailer that sold the unit (or the manufacturer's own
    service). The retailer records any goodwill credit itself (it submits its own loyalty
    records); we only suggest the points."""
    webhook_emit(
        partner=prompt_recipient(prompt),
        event_type=SERVICE_SIGNAL,
        dedupe_key=f"telemetry-prompt-{prompt.pk}",
        subject={"signal": str(prompt.signal_id)},
    )


@payload_builder(SERVICE_SIGNAL)
def service_signal_data(
    *, partner: Partner, subject: Mapping[str, Any], channel: str, request_id: str = ""
) -> dict[str, Any] | None:
    """An accepted prompt as ``partner`` (its recipient) may see it now: the service request
    through the visibility decision (its fields as the clause shares them, the read logged), or
    None when it may not see it any more."""
    prompt = (
        CustomerPrompt.objects.filter(
            signal_id=subject.get("signal"), status=CustomerPrompt.Status.ACCEPTED
        )
        .select_related("signal", "signal__device", "retailer")
        .first()
    )
    if prompt is None or prompt_recipient(prompt).pk != partner.pk:
        return None
    signal = prompt.signal
    if not signal.service_request_ref:
        return None
    request = (
        visible_records(partner=partner)
        .filter(ref=signal.service_request_ref)
        .first(channel=channel, request_id=request_id)
    )
    if request is None:
        return None
    return {
        "reference": f"SIG-{signal.pk}",
        "service_request": request["ref"],
        "issue": request["payload"].get("issue"),
        "product": request.get("product"),
        "customer": request.get("customer"),
        "customer_accepted_at": prompt.decided_at.isoformat(),
        "goodwill_suggested_points": settings.TELEMETRY_GOODWILL_POINTS,
    }
