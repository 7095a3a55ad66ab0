"""From a signal to care: a proactive service request and a customer prompt only under the
customer's consent; the webhook on acceptance."""

from clearinghouse.records import visibility
from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from partners.models import WebhookEvent
from partners.webhooks import endpoint_create, event_data
from telemetry import prompts, services
from telemetry.models import CustomerPrompt, ServiceSignal
from tests.records.conftest import consent, registration

from .conftest import GTIN, REGISTRATION_TO_SHOP, SERVICE_TO_SHOP, ingest, reading, register
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
    kinds = [r["kind"] for r in shop_view.read(channel="test")]
    assert "service_request" in kinds
    prompt = CustomerPrompt.objects.get(signal=signal)
    # No sale of the unit that the maker may see: the maker's own service books the visit.
    assert prompt.retailer is None and prompt.status == "pending"
    assert "book a free check" in prompt.text
    pending = prompts.pending_for_customer(customer_id=prompt.customer_id)
    assert [p["id"] for p in pending] == [prompt.pk]


def test_signal_without_consent_stays_with_the_manufacturer(fleet):
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    consent(fleet.shop, purpose="warranty")  # a consent, but not for service
    signal = _trip(fleet, device)
    assert (
        not InteractionRecord.objects.unscoped("test setup").filter(kind="service_request").exists()
    )
    assert not CustomerPrompt.objects.exists()
    assert ServiceSignal.objects.for_partner(fleet.maker).get() == signal
    assert not ServiceSignal.objects.for_partner(fleet.shop).exists()


def test_device_without_a_registration_opens_a_signal_only(fleet):
    (device,) = register(fleet.maker, "A")
    _trip(fleet, device)
    assert not CustomerPrompt.objects.exists()


def _listen(partner, admin):
    return endpoint_create(
        partner=partner,
        url=f"https://{partner.slug}.example.org/hooks",
        event_types=["service.signal"],
        actor=admin,
    )


def _sold_by(fleet, *retailers, seller):
    """Each of ``retailers`` shares its sales with the maker for warranty and may be told of
    service; the customer consented to all of that; ``seller`` sold unit A."""
    from partners.agreements.services import agreement_countersign, agreement_propose
    from tests.records.conftest import SALE_TO_MAKER, sale

    for retailer, admin in retailers:  # the pair's agreement, amended: one version in force
        version = agreement_propose(
            proposer=retailer,
            counterpart=fleet.maker,
            actor=admin,
            clauses=[SALE_TO_MAKER, REGISTRATION_TO_SHOP, SERVICE_TO_SHOP],
        )
        agreement_countersign(version=version, partner=fleet.maker, actor=fleet.maker_admin)
    results = records_ingest(
        partner=seller, rows=[sale(serial="A", product={"gtin": GTIN, "serial": "A"})], max_rows=1
    )
    assert results[0].status == "created", results[0].errors
    consent(fleet.maker, purpose="warranty", categories=["purchase"])
    for retailer, _ in retailers:
        consent(retailer, purpose="service", categories=["service", "telemetry"])


def test_accepting_a_prompt_sends_the_retailer_a_webhook_with_goodwill(fleet, settings):
    _listen(fleet.shop, fleet.shop_admin)
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    _sold_by(fleet, (fleet.shop, fleet.shop_admin), seller=fleet.shop)
    signal = _trip(fleet, device)
    prompt = CustomerPrompt.objects.get(signal=signal)
    assert prompt.retailer == fleet.shop
    services.prompt_accept(prompt=prompt)
    services.prompt_accept(prompt=prompt)  # a second click changes nothing
    event = WebhookEvent.objects.for_partner(fleet.shop).get(event_type="service.signal")
    assert event.subject == {"signal": str(signal.pk)}  # what it is about, not the data
    data = event_data(event, channel="webhook")
    assert data["reference"] == f"SIG-{signal.pk}"
    assert data["service_request"] == str(signal.service_request_ref)
    assert data["product"] == {"gtin": GTIN, "serial": "A"}  # the clause shares the product
    assert data["issue"] == "drain pump wearing out"
    assert data.get("customer") is None  # ... and not the customer
    assert data["goodwill_suggested_points"] == settings.TELEMETRY_GOODWILL_POINTS
    prompt.refresh_from_db()
    assert prompt.status == "accepted" and prompt.decided_at
    assert prompts.pending_for_customer(prompt.customer) == []


def test_the_prompt_goes_to_the_retailer_that_sold_the_unit(fleet, make_partner):
    aardvark, aardvark_admin = make_partner(kind="retailer", name="Aardvark")  # sorts first
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    _sold_by(fleet, (aardvark, aardvark_admin), (fleet.shop, fleet.shop_admin), seller=fleet.shop)
    prompt = CustomerPrompt.objects.get(signal=_trip(fleet, device))
    assert prompt.retailer == fleet.shop


def test_a_unit_sold_twice_goes_to_the_retailer_of_the_latest_sale(fleet, make_partner):
    from tests.records.conftest import sale

    later, later_admin = make_partner(kind="retailer", name="Zebra")  # sorts last
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    _sold_by(fleet, (fleet.shop, fleet.shop_admin), (later, later_admin), seller=fleet.shop)
    resale = sale(serial="A", product={"gtin": GTIN, "serial": "A"})
    resale["occurred_at"] = "2026-11-01T12:00:00Z"  # after the first sale
    (result,) = records_ingest(partner=later, rows=[resale], max_rows=1)
    assert result.status == "created", result.errors
    prompt = CustomerPrompt.objects.get(signal=_trip(fleet, device))
    assert prompt.retailer == later


def test_without_a_retailer_to_tell_the_makers_service_hears_of_it(fleet):
    _listen(fleet.maker, fleet.maker_admin)
    _listen(fleet.shop, fleet.shop_admin)
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    consent(fleet.shop, purpose="service", categories=["service", "telemetry"])
    signal = _trip(fleet, device)
    prompt = CustomerPrompt.objects.get(signal=signal)
    assert prompt.retailer is None
    services.prompt_accept(prompt=prompt)
    assert not WebhookEvent.objects.for_partner(fleet.shop).exists()
    event = WebhookEvent.objects.for_partner(fleet.maker).get(event_type="service.signal")
    data = event_data(event, channel="webhook")
    assert data["customer"] == str(prompt.customer_id)  # its own record: all of it


def test_a_withdrawal_before_the_delivery_stops_it_and_the_read_is_logged(fleet):
    from consent.models import AccessLogEntry, ConsentGrant
    from consent.services import consent_revoke
    from partners.models import WebhookDelivery
    from partners.webhooks import webhook_deliver

    _listen(fleet.shop, fleet.shop_admin)
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    _sold_by(fleet, (fleet.shop, fleet.shop_admin), seller=fleet.shop)
    prompt = CustomerPrompt.objects.get(signal=_trip(fleet, device))
    services.prompt_accept(prompt=prompt)
    event = WebhookEvent.objects.for_partner(fleet.shop).get(event_type="service.signal")
    before = AccessLogEntry.objects.filter(partner=fleet.shop, channel="webhook").count()
    assert event_data(event, channel="webhook") is not None
    assert AccessLogEntry.objects.filter(partner=fleet.shop, channel="webhook").count() > before
    for grant in ConsentGrant.objects.for_partner(fleet.shop).filter(revoked_at__isnull=True):
        consent_revoke(grant=grant)
    assert event_data(event, channel="webhook") is None
    delivery = WebhookDelivery.objects.unscoped("test setup").get(event=event)
    assert webhook_deliver(delivery_id=delivery.pk) == "gave_up"
    delivery.refresh_from_db()
    assert delivery.attempt_log.count() == 0 and "no longer shared" in delivery.last_error


def test_customer_answers_a_prompt_from_the_dashboard(fleet, client):
    import time

    from consent.dashboard.views import SESSION_KEY, SESSION_UNTIL

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
