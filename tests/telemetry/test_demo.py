"""The demo's telemetry and the simulator command."""

from io import StringIO

from django.core.management import call_command

from clearinghouse.demo import consent as consent_demo
from clearinghouse.demo import partners as partners_demo
from clearinghouse.demo import records as records_demo
from clearinghouse.demo import telemetry as telemetry_demo
from clearinghouse.records import visibility
from clearinghouse.records.gtin import normalise_gtin
from telemetry.models import CustomerPrompt, Device, Reading, ServiceSignal


def test_demo_trips_the_pump_rule_on_alices_dishwasher(db):
    partners, _ = partners_demo.load(lambda text: None)
    partners_demo.load_agreements(partners, lambda text: None)
    customers = consent_demo.load(partners, lambda text: None)
    records_demo.load(partners, customers, lambda text: None, bulk_units=20)
    telemetry_demo.load(partners, lambda text: None, devices=10, days=2)
    signal = ServiceSignal.objects.for_partner(partners["maker"]).get(
        device__serial="NW-DI-00001", rule__name=telemetry_demo.PUMP_RULE
    )
    assert signal.service_request_ref is not None
    prompt = CustomerPrompt.objects.get(signal=signal)
    assert prompt.customer == customers["alice@example.org"]
    unit = records_demo.unit("dishwasher", 1)
    shared = visibility.unit_timeline(
        partner=partners["shop"], gtin=normalise_gtin(unit["gtin"]), serial=unit["serial"]
    )
    refs = [r["ref"] for r in shared.filter(kind="service_request").read(channel="test")]
    assert str(signal.service_request_ref) in refs, (refs, signal.service_request_ref)
    before = Reading.objects.count()
    telemetry_demo.load(partners, lambda text: None, devices=10, days=2)  # idempotent enough
    assert (
        ServiceSignal.objects.unscoped("test setup")
        .filter(device__serial="NW-DI-00001", status="open")
        .count()
        == 1
    )
    assert Reading.objects.count() - before < 100  # a replay over the same window


def test_simulate_command_posts_through_the_ingest(make_partner):
    maker, _ = make_partner(name="Sim Maker")
    out = StringIO()
    call_command(
        "simulate_telemetry", devices=3, days=1, partner=maker.slug, stdout=out, stderr=out
    )
    assert Device.objects.for_partner(maker).count() == 3
    assert "accepted" in out.getvalue() and Reading.objects.count() > 3 * 96 * 3
