"""Readings over REST: streamed, validated row by row, COPY'd, replay-safe, tenant-scoped."""

import math

from django.test import override_settings

from telemetry.models import Device, Reading
from tests.partners.test_api import assert_problem

from .conftest import ago, post_readings, reading, register


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
    device = Device.objects.unscoped().get(serial="A-1")
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
