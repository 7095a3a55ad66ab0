"""Readings over REST: streamed, validated row by row, COPY'd, replay-safe, tenant-scoped."""

import math

from django.test import override_settings
from django.utils import timezone

from telemetry.models import Device, Reading
from tests.partners.test_api import assert_problem

from .conftest import ago, ingest, post_readings, reading, register


def test_valid_batch_is_stored_and_updates_last_seen(fleet, keys, api):
    register(fleet.maker, "A-1", "A-2")
    at = ago(minutes=30)
    rows = [
        reading("A-1", "water_temp_c", 55.5, at),
        reading("A-1", "power_w", 1800, at),
        reading("A-2", "door_cycles", 3, ago(minutes=5)),
    ]
    response = post_readings(api(keys["maker"]), rows)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
        "errors_truncated": False,
    }
    assert Reading.objects.count() == 3
    device = Device.objects.unscoped("test setup").get(serial="A-1")
    assert abs((device.last_seen_at - at).total_seconds()) < 1


def test_bad_rows_are_rejected_with_reasons_and_good_rows_kept(fleet, keys, api):
    register(fleet.maker, "A-1")
    register(fleet.other, "THEIRS-1")
    now = ago(minutes=1)
    rows = [
        reading("A-1", "water_temp_c", 50, now),
        reading("NOPE", "water_temp_c", 50, now),
        reading("THEIRS-1", "water_temp_c", 50, now),
        reading("A-1", "water_temp_c", 50, ago(minutes=-10)),
        reading("A-1", "humidity", 50, now),
        {"device": "A-1", "metric": "power_w", "value": "NaN", "ts": now.isoformat()},
        {"device": "A-1", "metric": "power_w", "value": 1, "ts": "2026-01-01T00:00:00"},
        "not an object",
    ]
    body = post_readings(api(keys["maker"]), rows).json()
    assert (body["accepted"], body["rejected"]) == (1, 7)
    fields = {e["index"]: e["field"] for e in body["errors"]}
    assert fields == {1: "device", 2: "device", 3: "ts", 4: "metric", 5: "value", 6: "ts", 7: None}
    # The foreign device reads exactly like an unknown one.
    messages = {e["index"]: e["message"] for e in body["errors"]}
    assert messages[1] == messages[2]
    assert Reading.objects.count() == 1


def test_non_finite_numbers_from_ndjson_are_rejected(fleet, keys, api):
    register(fleet.maker, "A-1")
    at = ago(minutes=1).isoformat()
    lines = [
        b'{"device": "A-1", "metric": "power_w", "value": 1, "ts": "%s"}' % at.encode(),
        b"this is not json",
    ]
    body = post_readings(api(keys["maker"]), lines, fmt="ndjson").json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert not math.isfinite(float("inf"))


def test_replayed_batch_creates_no_duplicates(fleet, keys, api):
    register(fleet.maker, "A-1")
    rows = [reading("A-1", "power_w", i, ago(minutes=i)) for i in range(1, 50)]
    first = post_readings(api(keys["maker"]), rows).json()
    again = post_readings(api(keys["maker"]), rows + rows[:1]).json()
    assert (first["accepted"], first["duplicates"]) == (49, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 50)
    assert Reading.objects.count() == 49


def test_idempotency_key_replays_the_first_answer(fleet, keys, api):
    register(fleet.maker, "A-1")
    rows = [reading("A-1", "power_w", 5, ago(minutes=3))]
    client = api(keys["maker"])
    first = post_readings(client, rows, HTTP_IDEMPOTENCY_KEY="k-1")
    second = post_readings(client, rows, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.json() == second.json() and first.json()["accepted"] == 1
    other = post_readings(client, rows + rows, HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422


@override_settings(TELEMETRY_MAX_BATCH=10)
def test_oversize_batch_is_413_and_stores_nothing(fleet, keys, api):
    register(fleet.maker, "A-1")
    rows = [reading("A-1", "power_w", i, ago(minutes=i + 1)) for i in range(11)]
    response = post_readings(api(keys["maker"]), rows)
    assert_problem(response, 413)
    assert Reading.objects.count() == 0


def test_malformed_body_and_wrong_media_type(fleet, keys, api):
    client = api(keys["maker"])
    response = client.post(
        "/api/v1/telemetry/readings", b'[{"device": ', content_type="application/json"
    )
    assert_problem(response, 400)
    response = client.post("/api/v1/telemetry/readings", b"x", content_type="text/plain")
    assert_problem(response, 415)
    assert Reading.objects.count() == 0


def test_readings_need_the_write_scope(fleet, issue_key, api):
    from partners.models import Scope

    _, key = issue_key(fleet.maker, fleet.maker_admin, scopes=[Scope.TELEMETRY_READ])
    response = post_readings(api(key), [])
    assert response.status_code == 403


def test_device_registration_single_and_bulk_and_tenancy(fleet, keys, api):
    maker, other = api(keys["maker"]), api(keys["other"])
    one = maker.post(
        "/api/v1/telemetry/devices",
        {"serial": "X-1", "gtin": "4012345678901", "model_name": "DW-500"},
        format="json",
    )
    assert one.status_code == 201 and one.json()["gtin"] == "04012345678901"
    bulk = maker.post(
        "/api/v1/telemetry/devices",
        [
            {"serial": f"X-{i}", "gtin": "04012345678901", "model_name": "DW-500"}
            for i in range(2, 5)
        ],
        format="json",
    )
    assert bulk.status_code == 201 and len(bulk.json()) == 3
    bad = maker.post(
        "/api/v1/telemetry/devices",
        [{"serial": "X-9", "gtin": "123", "model_name": "m"}],
        format="json",
    )
    assert_problem(bad, 400)
    listing = maker.get("/api/v1/telemetry/devices").json()
    assert [d["serial"] for d in listing["results"]] == ["X-1", "X-2", "X-3", "X-4"]
    assert maker.get("/api/v1/telemetry/devices/X-1").status_code == 200
    assert_problem(other.get("/api/v1/telemetry/devices/X-1"), 404)
    assert other.get("/api/v1/telemetry/devices").json()["results"] == []


def test_rows_sharing_a_timestamp_get_the_same_verdict(fleet):
    register(fleet.maker, "A-1", "A-2")
    soon, later, now = ago(minutes=-2).isoformat(), ago(minutes=-30).isoformat(), ago(minutes=1)
    rows = [
        {"device": "A-1", "metric": "power_w", "value": 1, "ts": later},
        {"device": "A-2", "metric": "power_w", "value": 1.5, "ts": later},
        {"device": "A-1", "metric": "water_temp_c", "value": 40, "ts": soon},
        {"device": "A-2", "metric": "water_temp_c", "value": 41.25, "ts": soon},
        # The same moment written another way is the same reading.
        {"device": "A-1", "metric": "door_cycles", "value": 7, "ts": now.isoformat()},
        {
            "device": "A-1",
            "metric": "door_cycles",
            "value": 7,
            "ts": now.astimezone(timezone.get_fixed_timezone(120)).isoformat(),
        },
    ]
    summary = ingest(fleet.maker, rows)
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (3, 1, 2)
    assert [(e["index"], e["field"]) for e in summary["errors"]] == [(0, "ts"), (1, "ts")]
    stored = sorted(Reading.objects.values_list("metric", "value"))
    assert stored == [("door_cycles", 7.0), ("water_temp_c", 40.0), ("water_temp_c", 41.25)]


def test_odd_shapes_are_rejected_with_reasons_not_errors(fleet):
    register(fleet.maker, "A-1")
    at = ago(minutes=3).isoformat()
    rows = [
        {"device": "A-1", "metric": ["power_w"], "value": 1, "ts": at},
        {"device": "A-1", "metric": "power_w", "value": 10**400, "ts": at},
        {"device": "A-1", "metric": "power_w", "value": True, "ts": at},
        {"device": "A-1", "metric": "power_w", "value": 1, "ts": 1700000000},
        {"device": "A-1", "metric": "power_w", "value": float("inf"), "ts": at},
        {"device": "A-1", "metric": "power_w", "ts": at},
        {"device": "A-1", "metric": "power_w", "value": 1, "ts": at, "unit": "W"},
        {"device": "", "metric": "power_w", "value": 1, "ts": at},
        {"device": "A-1", "metric": "power_w", "value": 2**62, "ts": at},
    ]
    summary = ingest(fleet.maker, rows)
    assert (summary["accepted"], summary["rejected"]) == (1, 8)
    assert [(e["index"], e["field"], e["message"]) for e in summary["errors"]] == [
        (0, "metric", summary["errors"][0]["message"]),
        (1, "value", "must be a finite number"),
        (2, "value", "must be a number"),
        (3, "ts", "must be an ISO 8601 date-time with a time zone"),
        (4, "value", "must be a finite number"),
        (5, "value", "must be a number"),
        (6, "unit", "is not a field of a reading"),
        (7, "device", "is required: the device's serial number"),
    ]
    assert list(Reading.objects.values_list("value", flat=True)) == [float(2**62)]


def test_a_batch_repeating_an_earlier_chunk_stores_each_reading_once(fleet, monkeypatch):
    from telemetry import ingest as module

    monkeypatch.setattr(module, "CHUNK", 4)
    register(fleet.maker, "A-1", "A-2")
    first = [reading("A-1", "power_w", i, ago(minutes=i + 1)) for i in range(6)]
    assert ingest(fleet.maker, first)["accepted"] == 6
    # Chunk one is new, chunk two repeats two stored readings, chunk three is new again.
    fresh = [reading("A-2", "power_w", i, ago(minutes=i + 1)) for i in range(8)]
    rows = fresh[:4] + first[:2] + fresh[4:6] + fresh[6:] + fresh[6:7]
    summary = ingest(fleet.maker, rows)
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (8, 3, 0)
    assert Reading.objects.count() == 14
    assert (
        Reading.objects.filter(
            device_id=Device.objects.unscoped("test setup").get(serial="A-2").pk
        ).count()
        == 8
    )
