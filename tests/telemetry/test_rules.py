"""Service rules: each condition kind, AND/OR, one live signal per device and rule, API."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from telemetry import services, tasks
from telemetry.models import ServiceSignal
from tests.partners.test_api import assert_problem

from .conftest import ingest, reading, register


def at(minutes):
    """A moment ``minutes`` after a fixed start two days ago."""
    base = timezone.now().replace(second=0, microsecond=0) - timedelta(days=2)
    return base + timedelta(minutes=minutes)


def rule(partner, *conditions, operator="and", model_name="DW-500"):
    return services.rule_create(
        partner=partner,
        model_name=model_name,
        name="Drain pump",
        issue="drain pump wearing out",
        conditions=list(conditions),
        operator=operator,
    )


def evaluate(*devices):
    return services.rules_evaluate(device_ids=[d.pk for d in devices])


PUMP = {
    "kind": "threshold",
    "metric": "drain_pump_current_a",
    "op": ">",
    "value": 1.5,
    "minutes": 60,
}


def test_threshold_needs_the_full_duration(fleet):
    a, b = register(fleet.maker, "A", "B")
    rule(fleet.maker, PUMP)
    # A: above 1.5 for 90 min (after one normal reading); B: above for only 30 min.
    ingest(fleet.maker, [reading("A", "drain_pump_current_a", 1.0, at(0))])
    ingest(
        fleet.maker, [reading("A", "drain_pump_current_a", 1.8, at(m)) for m in range(10, 101, 10)]
    )
    ingest(
        fleet.maker, [reading("B", "drain_pump_current_a", 1.0, at(m)) for m in range(0, 61, 10)]
    )
    ingest(
        fleet.maker, [reading("B", "drain_pump_current_a", 1.9, at(m)) for m in range(70, 101, 10)]
    )
    opened = evaluate(a, b)
    assert [s.device.serial for s in opened] == ["A"]
    evidence = opened[0].evidence
    assert evidence and all(e["value"] == 1.8 for e in evidence)
    assert evidence[0]["metric"] == "drain_pump_current_a"


def test_threshold_broken_by_a_normal_latest_reading_does_not_hold(fleet):
    (a,) = register(fleet.maker, "A")
    rule(fleet.maker, PUMP)
    rows = [reading("A", "drain_pump_current_a", 1.8, at(m)) for m in range(0, 91, 10)]
    rows.append(reading("A", "drain_pump_current_a", 1.2, at(95)))
    ingest(fleet.maker, rows)
    assert evaluate(a) == []


def test_count_within_window(fleet):
    a, b = register(fleet.maker, "A", "B")
    rule(
        fleet.maker,
        {"kind": "count", "metric": "error_code", "value": 24, "at_least": 3, "minutes": 60},
    )
    ingest(fleet.maker, [reading("A", "error_code", 24, at(m)) for m in (0, 20, 40)])
    # B: three errors but spread over two hours.
    ingest(fleet.maker, [reading("B", "error_code", 24, at(m)) for m in (0, 60, 120)])
    opened = evaluate(a, b)
    assert [s.device.serial for s in opened] == ["A"] and len(opened[0].evidence) == 3


def test_cumulative_usage(fleet):
    a, b = register(fleet.maker, "A", "B")
    rule(fleet.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 500})
    ingest(
        fleet.maker,
        [reading("A", "filter_hours", 499, at(0)), reading("A", "filter_hours", 501, at(60))],
    )
    ingest(
        fleet.maker,
        [reading("B", "filter_hours", 600, at(0)), reading("B", "filter_hours", 10, at(60))],
    )
    assert [s.device.serial for s in evaluate(a, b)] == ["A"]


def test_rate_of_change(fleet):
    a, b = register(fleet.maker, "A", "B")
    rule(fleet.maker, {"kind": "rate", "metric": "water_temp_c", "per_hour": 10, "minutes": 120})
    ingest(
        fleet.maker, [reading("A", "water_temp_c", 20 + m / 3, at(m)) for m in range(0, 121, 30)]
    )
    ingest(
        fleet.maker, [reading("B", "water_temp_c", 20 + m / 60, at(m)) for m in range(0, 121, 30)]
    )
    opened = evaluate(a, b)
    assert [s.device.serial for s in opened] == ["A"] and len(opened[0].evidence) == 2


def test_no_data_on_the_beat(fleet):
    a, _b = register(fleet.maker, "A", "B")
    rule(fleet.maker, {"kind": "no_data", "minutes": 120})
    ingest(fleet.maker, [reading("A", "power_w", 1, timezone.now() - timedelta(hours=5))])
    ingest(fleet.maker, [reading("B", "power_w", 1, timezone.now() - timedelta(minutes=5))])
    result = tasks.evaluate_no_data()
    assert result["opened"] == 1
    assert ServiceSignal.objects.unscoped("test setup").get().device == a


def test_and_or_combinations(fleet):
    a, b = register(fleet.maker, "A", "B")
    hot = {"kind": "cumulative", "metric": "water_temp_c", "at_least": 70}
    worn = {"kind": "cumulative", "metric": "filter_hours", "at_least": 500}
    both = rule(fleet.maker, hot, worn, operator="and")
    either = rule(fleet.maker, hot, worn, operator="or")
    ingest(
        fleet.maker,
        [reading("A", "water_temp_c", 75, at(0)), reading("A", "filter_hours", 600, at(0))],
    )
    ingest(
        fleet.maker,
        [reading("B", "water_temp_c", 75, at(0)), reading("B", "filter_hours", 100, at(0))],
    )
    evaluate(a, b)
    pairs = set(
        ServiceSignal.objects.unscoped("test setup").values_list("device__serial", "rule_id")
    )
    assert pairs == {("A", both.pk), ("A", either.pk), ("B", either.pk)}


def test_only_one_live_signal_per_device_and_rule(fleet):
    (a,) = register(fleet.maker, "A")
    rule(fleet.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    ingest(fleet.maker, [reading("A", "filter_hours", 10, at(0))])
    assert len(evaluate(a)) == 1
    assert evaluate(a) == [] and tasks.evaluate_rules([a.pk]) == []
    signal = ServiceSignal.objects.unscoped("test setup").get()
    services.signal_transition(signal=signal, action="acknowledge")
    assert evaluate(a) == []
    services.signal_transition(signal=signal, action="resolve")
    assert len(evaluate(a)) == 1  # still holding after it was resolved: a new signal
    assert ServiceSignal.objects.unscoped("test setup").filter(status="open").count() == 1
    with pytest.raises(ValidationError):
        services.signal_transition(signal=signal, action="dismiss")


def test_rules_of_another_model_or_maker_do_not_apply(fleet):
    (a,) = register(fleet.maker, "A")
    rule(
        fleet.maker,
        {"kind": "cumulative", "metric": "filter_hours", "at_least": 5},
        model_name="WM-1",
    )
    rule(fleet.other, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    ingest(fleet.maker, [reading("A", "filter_hours", 10, at(0))])
    assert evaluate(a) == []


def test_invalid_conditions_are_refused(fleet):
    with pytest.raises(ValidationError):
        rule(
            fleet.maker,
            {"kind": "threshold", "metric": "humidity", "op": ">", "value": 1, "minutes": 5},
        )
    with pytest.raises(ValidationError):
        rule(fleet.maker, {"kind": "magic"})


def test_rules_and_signals_api_with_tenancy(fleet, keys, api):
    maker, other = api(keys["maker"]), api(keys["other"])
    response = maker.post(
        "/api/v1/telemetry/rules",
        {
            "model_name": "DW-500",
            "name": "Filter",
            "issue": "filter due",
            "operator": "and",
            "conditions": [{"kind": "cumulative", "metric": "filter_hours", "at_least": 5}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    bad = maker.post(
        "/api/v1/telemetry/rules",
        {"model_name": "DW-500", "name": "x", "issue": "x", "conditions": [{"kind": "nope"}]},
        format="json",
    )
    assert_problem(bad, 400)
    (a,) = register(fleet.maker, "A")
    ingest(fleet.maker, [reading("A", "filter_hours", 10, at(0))])
    evaluate(a)
    listing = maker.get("/api/v1/telemetry/signals").json()["results"]
    assert len(listing) == 1 and listing[0]["reference"].startswith("SIG-")
    pk = listing[0]["id"]
    assert other.get("/api/v1/telemetry/signals").json()["results"] == []
    assert_problem(other.get(f"/api/v1/telemetry/signals/{pk}"), 404)
    assert_problem(other.post(f"/api/v1/telemetry/signals/{pk}/resolve"), 404)
    assert other.get("/api/v1/telemetry/rules").json()["results"] == []
    done = maker.post(f"/api/v1/telemetry/signals/{pk}/acknowledge")
    assert done.status_code == 200 and done.json()["status"] == "acknowledged"
    assert_problem(maker.post(f"/api/v1/telemetry/signals/{pk}/acknowledge"), 400)
    assert_problem(maker.post(f"/api/v1/telemetry/signals/{pk}/explode"), 400)


def test_a_deactivated_rule_opens_no_signal(fleet, keys, api):
    (a,) = register(fleet.maker, "A")
    r = rule(fleet.maker, {"kind": "cumulative", "metric": "filter_hours", "at_least": 5})
    ingest(fleet.maker, [reading("A", "filter_hours", 10, at(0))])
    assert_problem(api(keys["other"]).post(f"/api/v1/telemetry/rules/{r.pk}/deactivate"), 404)
    off = api(keys["maker"]).post(f"/api/v1/telemetry/rules/{r.pk}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    assert evaluate(a) == []
    api(keys["maker"]).post(f"/api/v1/telemetry/rules/{r.pk}/activate")
    assert len(evaluate(a)) == 1


def test_a_signal_whose_condition_stays_cleared_is_resolved(fleet, settings):
    settings.TELEMETRY_SIGNAL_CLEAR_MINUTES = 30
    a, b = register(fleet.maker, "A", "B")
    rule(fleet.maker, PUMP)
    for serial in ("A", "B"):
        ingest(
            fleet.maker,
            [reading(serial, "drain_pump_current_a", 1.8, at(m)) for m in range(0, 91, 10)],
        )
    assert len(evaluate(a, b)) == 2
    # A's pump is back to normal; B's is not.
    ingest(fleet.maker, [reading("A", "drain_pump_current_a", 1.1, at(100))])
    assert evaluate(a, b) == []
    signal_a = ServiceSignal.objects.unscoped("test setup").get(device=a)
    signal_b = ServiceSignal.objects.unscoped("test setup").get(device=b)
    assert signal_a.condition_cleared_at is not None and signal_b.condition_cleared_at is None
    cleared = signal_a.condition_cleared_at
    # Not yet cleared for long enough; then long enough.
    assert services.signals_resolve_cleared(now=cleared + timedelta(minutes=29)) == 0
    assert tasks.resolve_cleared_signals() == 0
    assert services.signals_resolve_cleared(now=cleared + timedelta(minutes=31)) == 1
    signal_a.refresh_from_db()
    signal_b.refresh_from_db()
    assert (signal_a.status, signal_b.status) == ("resolved", "open")
    client = Client()
    client.force_login(fleet.maker_admin)
    page = client.get("/portal/signals/", {"status": "resolved"}).content.decode()
    assert f"SIG-{signal_a.pk}" in page and "condition cleared" in page
    # Tripping again opens a new signal.
    ingest(
        fleet.maker,
        [reading("A", "drain_pump_current_a", 1.9, at(m)) for m in range(110, 181, 10)],
    )
    assert [s.device.serial for s in evaluate(a)] == ["A"]


def _acknowledged_then_cleared(fleet):
    """Device A trips the pump rule, its signal is acknowledged, then its pump calms down."""
    (a,) = register(fleet.maker, "A")
    rule(fleet.maker, PUMP)
    ingest(
        fleet.maker, [reading("A", "drain_pump_current_a", 1.8, at(m)) for m in range(0, 91, 10)]
    )
    (signal,) = evaluate(a)
    services.signal_transition(signal=signal, action="acknowledge")
    ingest(fleet.maker, [reading("A", "drain_pump_current_a", 1.0, at(95))])
    evaluate(a)
    signal.refresh_from_db()
    return a, signal


def test_a_condition_that_holds_again_unmarks_its_signal(fleet, settings):
    settings.TELEMETRY_SIGNAL_CLEAR_MINUTES = 30
    a, signal = _acknowledged_then_cleared(fleet)
    assert signal.condition_cleared_at is not None
    ingest(
        fleet.maker, [reading("A", "drain_pump_current_a", 1.8, at(m)) for m in range(100, 171, 10)]
    )
    assert evaluate(a) == []  # still the one live signal
    signal.refresh_from_db()
    assert signal.condition_cleared_at is None and signal.status == "acknowledged"
    assert services.signals_resolve_cleared(now=timezone.now() + timedelta(days=1)) == 0
    settings.TELEMETRY_SIGNAL_CLEAR_MINUTES = 0
    ingest(fleet.maker, [reading("A", "drain_pump_current_a", 1.0, at(175))])
    evaluate(a)
    assert services.signals_resolve_cleared(now=timezone.now() + timedelta(days=1)) == 0
    signal.refresh_from_db()
    assert signal.status == "acknowledged" and signal.condition_cleared_at is not None


def test_an_acknowledged_signal_is_left_to_people_when_its_condition_clears(fleet, settings):
    settings.TELEMETRY_SIGNAL_CLEAR_MINUTES = 30
    _, signal = _acknowledged_then_cleared(fleet)
    assert services.signals_resolve_cleared(now=timezone.now() + timedelta(days=1)) == 0
    signal.refresh_from_db()
    assert signal.status == "acknowledged" and signal.condition_cleared_at is not None
