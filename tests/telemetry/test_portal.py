"""Portal pages: fleet, device charts, signal queue, rules; foreign objects are 404s."""

from django.test import Client

from telemetry import services
from telemetry.models import ServiceRule, ServiceSignal

from .conftest import ingest, reading, register
from .test_rules import at, evaluate, rule


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def _setup(fleet):
    (device,) = register(fleet.maker, "A")
    rows = [reading("A", "drain_pump_current_a", 1 + m / 600, at(m)) for m in range(0, 600, 15)]
    rows.append(reading("A", "filter_hours", 10, at(600)))
    ingest(fleet.maker, rows)
    services.rollups_refresh(device_ids=[device.pk], start=at(0), end=at(600))
    rule(fleet.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    (signal,) = evaluate(device)
    return device, signal


def test_fleet_device_and_signal_pages_render(fleet):
    _device, signal = _setup(fleet)
    c = _client(fleet.maker_admin)
    fleet_page = c.get("/portal/devices/")
    assert fleet_page.status_code == 200
    assert b"DW-500" in fleet_page.content and b'href="/portal/devices/A/"' in fleet_page.content
    page = c.get("/portal/devices/A/")
    assert page.status_code == 200
    assert page.content.count(b"<polyline") == 2 and b"zoom in" in page.content
    zoomed = c.get("/portal/devices/A/", {"from": at(0).isoformat(), "to": at(120).isoformat()})
    assert zoomed.status_code == 200 and b"<polyline" in zoomed.content
    assert c.get("/portal/devices/A/", {"from": "garbage"}).status_code == 200
    queue = c.get("/portal/signals/")
    assert queue.status_code == 200 and f"SIG-{signal.pk}".encode() in queue.content
    done = c.post(f"/portal/signals/{signal.pk}/acknowledge/")
    assert done.status_code == 302
    signal.refresh_from_db()
    assert signal.status == "acknowledged"
    assert c.get("/portal/signals/", {"status": "acknowledged"}).status_code == 200


def test_another_partner_gets_404s(fleet):
    _, signal = _setup(fleet)
    c = _client(fleet.other_admin)
    assert c.get("/portal/devices/A/").status_code == 404
    assert c.post(f"/portal/signals/{signal.pk}/dismiss/").status_code == 404
    assert b"SIG-" not in c.get("/portal/signals/").content
    signal.refresh_from_db()
    assert signal.status == "open"


def test_rule_form_creates_a_rule_and_shows_errors(fleet):
    c = _client(fleet.maker_admin)
    assert c.get("/portal/service-rules/").status_code == 200
    bad = c.post(
        "/portal/service-rules/",
        {"model_name": "DW", "name": "n", "issue": "i", "operator": "and", "conditions": "[{}]"},
    )
    assert bad.status_code == 400 and b"kind must be one of" in bad.content
    good = c.post(
        "/portal/service-rules/",
        {
            "model_name": "DW",
            "name": "Filter",
            "issue": "filter due",
            "operator": "or",
            "conditions": '[{"kind": "no_data", "minutes": 60}]',
        },
    )
    assert good.status_code == 302
    assert ServiceRule.objects.for_partner(fleet.maker).get().operator == "or"
    assert not ServiceSignal.objects.unscoped("test setup").exists()


def test_nav_has_devices_link(fleet):
    page = _client(fleet.maker_admin).get("/portal/devices/")
    assert b'href="/portal/devices/" aria-current="page"' in page.content


def test_rule_can_be_switched_off_in_the_portal_by_its_maker_only(fleet):
    r = rule(fleet.maker, {"kind": "no_data", "minutes": 60})
    assert (
        _client(fleet.other_admin).post(f"/portal/service-rules/{r.pk}/deactivate/").status_code
        == 404
    )
    c = _client(fleet.maker_admin)
    assert b"Switch off" in c.get("/portal/service-rules/").content
    assert c.post(f"/portal/service-rules/{r.pk}/deactivate/").status_code == 302
    r.refresh_from_db()
    assert r.active is False
