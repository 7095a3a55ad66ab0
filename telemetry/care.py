"""From a service signal to care: a proactive service request both partners see, and a prompt in
the customer's dashboard — only where the customer consented to service sharing of device data
with the retailer. Without that consent the signal stays the manufacturer's alone."""

import logging

from django.conf import settings

from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from consent import identity
from consent.models import Customer
from consent.selectors import consent_allows
from consent.services import identifiers_decrypt
from partners.agreements.selectors import pairs_in_force
from partners.models import Partner
from partners.webhooks import webhook_emit

from .models import CustomerPrompt

logger = logging.getLogger(__name__)
DEFAULT_PROMPT = "Your {model} shows signs of a fault ({issue}) — book a free check?"


def device_customer_id(*, device, manufacturer):
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
    return Partner.objects.unscoped().get(pk=device.manufacturer_id)


def consenting_retailers(*, manufacturer, customer_id):
    """The retailers in an agreement with this manufacturer to which the customer consented to
    share device data for service, checked now against the ledger."""
    retailer_ids = [r for _, r in pairs_in_force(partner=manufacturer)]
    retailers = Partner.objects.unscoped().filter(pk__in=retailer_ids).order_by("name")
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


def signal_to_care(*, signal):
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
    prompt, _ = CustomerPrompt.objects.get_or_create(
        signal=signal,
        defaults={"customer_id": customer_id, "retailer": retailers[0], "text": text[:300]},
    )
    return prompt


def notify_retailer(*, prompt):
    """The customer accepted: tell the retailer. The retailer records any goodwill credit
    itself (it submits its own loyalty records); we only suggest the points."""
    signal = prompt.signal
    webhook_emit(
        partner=prompt.retailer,
        event_type="service.signal",
        dedupe_key=f"telemetry-prompt-{prompt.pk}",
        data={
            "reference": f"SIG-{signal.pk}",
            "service_request": str(signal.service_request_ref or ""),
            "issue": signal.rule.issue,
            "product": {"gtin": signal.device.gtin, "serial": signal.device.serial},
            "customer": str(prompt.customer_id),
            "customer_accepted_at": prompt.decided_at.isoformat(),
            "goodwill_suggested_points": settings.TELEMETRY_GOODWILL_POINTS,
        },
    )
