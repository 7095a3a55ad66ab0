"""From a signal to care: a proactive service request and a customer prompt only under the
customer's consent; the webhook on acceptance."""

from clearinghouse.records import visibility
from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from partners.models import WebhookEvent
from partners.webhooks import endpoint_create
from telemetry import prompts, services
from telemetry.models import CustomerPrompt, ServiceSignal
from tests.records.conftest import consent, registration

from .conftest import GTIN, ingest, reading, register
from .test_rules import at, evaluate, rule


def _unit_registered(fleet, serial="A", email="alice@example.org"):
    results = records_ingest(
        partner=fleet.maker,
        rows=[registration(email=email, serial=serial, product={"gtin": GTIN, "serial": serial})],
        max_rows=1,
    )
    assert results[0].status == "created", results[0].errors


def _trip(fleet, device):
    rule(fleet.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    ingest(fleet.maker, [reading(device.serial, "filter_hours", 10, at(0))])
    (signal,) = evaluate(device)
    return signal


def test_signal_with_consent_becomes_a_service_request_both_see_and_a_prompt(fleet):
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    consent(fleet.shop, purpose="service", categories=["service", "telemetry"])
    signal = _trip(fleet, device)
    signal.refresh_from_db()
    record = InteractionRecord.objects.for_partner(fleet.maker).get(kind="service_request")
    assert signal.service_request_ref == record.ref
    assert record.payload == {
        "issue": "drain pump wearing out",
        "status": "open",
        "proactive": True,
        "reference": f"SIG-{signal.pk}",
    }
    shop_view = visibility.unit_timeline(partner=fleet.shop, gtin=GTIN, serial="A")
    kinds = [r.kind for r in shop_view.queryset]
    assert "service_request" in kinds
    prompt = CustomerPrompt.objects.get(signal=signal)
    assert prompt.retailer == fleet.shop and prompt.status == "pending"
    assert "book a free check" in prompt.text
    pending = prompts.pending_for_customer(customer_id=prompt.customer_id)
    assert [p["id"] for p in pending] == [prompt.pk]


def test_signal_without_consent_stays_with_the_manufacturer(fleet):
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    consent(fleet.shop, purpose="warranty")  # a consent, but not for service
    signal = _trip(fleet, device)
    assert not InteractionRecord.objects.unscoped().filter(kind="service_request").exists()
    assert not CustomerPrompt.objects.exists()
    assert ServiceSignal.objects.for_partner(fleet.maker).get() == signal
    assert not ServiceSignal.objects.for_partner(fleet.shop).exists()


def test_device_without_a_registration_opens_a_signal_only(fleet):
    (device,) = register(fleet.maker, "A")
    _trip(fleet, device)
    assert not CustomerPrompt.objects.exists()


def test_accepting_a_prompt_sends_the_retailer_a_webhook_with_goodwill(fleet, settings):
    endpoint_create(
        partner=fleet.shop,
        url="https://shop.example.org/hooks",
        event_types=["service.signal"],
        actor=fleet.shop_admin,
    )
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    consent(fleet.shop, purpose="service", categories=["service", "telemetry"])
    signal = _trip(fleet, device)
    prompt = CustomerPrompt.objects.get(signal=signal)
    services.prompt_accept(prompt=prompt)
    services.prompt_accept(prompt=prompt)  # a second click changes nothing
    event = WebhookEvent.objects.for_partner(fleet.shop).get(event_type="service.signal")
    assert event.payload["reference"] == f"SIG-{signal.pk}"
    assert event.payload["goodwill_suggested_points"] == settings.TELEMETRY_GOODWILL_POINTS
    prompt.refresh_from_db()
    assert prompt.status == "accepted" and prompt.decided_at
    assert prompts.pending_for_customer(prompt.customer) == []


def test_customer_answers_a_prompt_from_the_dashboard(fleet, client):
    import time

    from consent.views import SESSION_KEY, SESSION_UNTIL

    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    consent(fleet.shop, purpose="service", categories=["service", "telemetry"])
    prompt = CustomerPrompt.objects.get(signal=_trip(fleet, device))
    url = prompts.pending_for_customer(prompt.customer)[0]["decline_url"]
    assert client.post(url).status_code == 302  # not signed in: to the sign-in page
    assert CustomerPrompt.objects.get().status == "pending"
    session = client.session
    session[SESSION_KEY] = str(prompt.customer_id)
    session[SESSION_UNTIL] = time.time() + 600
    session.save()
    assert client.post(url).status_code == 302
    assert CustomerPrompt.objects.get().status == "declined"
