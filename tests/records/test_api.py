"""The records API: streamed ingest, idempotency, lists, details and timelines."""

import json

import orjson
import pytest

from clearinghouse.records.models import InteractionRecord
from consent.models import AccessLogEntry
from partners.models import Scope
from tests.partners.test_api import assert_problem

from .conftest import consent, registration, sale


@pytest.fixture
def keys(pair, issue_key):
    scopes = [Scope.RECORDS_READ, Scope.RECORDS_WRITE]
    return {
        "shop": issue_key(pair.shop, pair.shop_admin, scopes=scopes)[1],
        "maker": issue_key(pair.maker, pair.maker_admin, scopes=scopes)[1],
    }


def post_rows(client, rows, fmt="json", **headers):
    if fmt == "json":
        return client.post(
            "/api/v1/records", orjson.dumps(rows), content_type="application/json", **headers
        )
    body = b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in rows)
    return client.post("/api/v1/records", body, content_type="application/x-ndjson", **headers)


def test_json_array_batch_answers_row_by_row(pair, keys, api):
    response = post_rows(
        api(keys["shop"]), [sale("S-1"), sale("S-2", product={"gtin": "123", "serial": "x"})]
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["created"], body["rejected"]) == (1, 1, 1)
    assert body["results"][0]["status"] == "created" and body["results"][0]["ref"]
    assert body["results"][1]["errors"][0]["field"] == "product.gtin"


def test_ndjson_batch_with_a_broken_line_keeps_the_rest(pair, keys, api):
    response = post_rows(api(keys["shop"]), [sale("S-1"), b"{not json", sale("S-2")], fmt="ndjson")
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["created", "rejected", "created"]
    assert "line 2" in body["results"][1]["errors"][0]["message"]
    assert InteractionRecord.objects.unscoped("test setup").count() == 2


def test_single_record_is_201_then_200_and_a_bad_one_is_a_problem(pair, keys, api):
    client = api(keys["shop"])
    first = client.post("/api/v1/records", sale("S-1"), format="json")
    assert first.status_code == 201 and first.json()["external_id"] == "S-1"
    again = client.post("/api/v1/records", sale("S-1"), format="json")
    assert again.status_code == 200 and again.json()["ref"] == first.json()["ref"]
    bad = assert_problem(
        client.post("/api/v1/records", sale("S-2", kind="nope"), format="json"), 400, "validation"
    )
    assert bad["errors"][0]["field"] == "kind"


def test_malformed_json_array_stores_nothing(pair, keys, api):
    body = orjson.dumps([sale("S-1"), sale("S-2")])[:-20]
    assert_problem(
        api(keys["shop"]).post("/api/v1/records", body, content_type="application/json"), 400
    )
    assert not InteractionRecord.objects.unscoped("test setup").exists()


def test_oversize_batch_is_413_and_stores_nothing(pair, keys, api, settings):
    settings.RECORDS_MAX_BATCH = 3
    response = post_rows(api(keys["shop"]), [sale(f"S-{i}", serial=f"N{i}") for i in range(4)])
    assert_problem(response, 413, "batch_too_large")
    assert not InteractionRecord.objects.unscoped("test setup").exists()


def test_wrong_content_type_is_415(pair, keys, api):
    response = api(keys["shop"]).post(
        "/api/v1/records", "external_id,kind", content_type="text/csv"
    )
    assert_problem(response, 415)


def test_idempotency_key_replays_the_first_answer(pair, keys, api):
    client = api(keys["shop"])
    rows = [sale("S-1"), sale("S-2", kind="bad")]
    first = post_rows(client, rows, HTTP_IDEMPOTENCY_KEY="batch-42")
    # The answer must not be recomputed.
    InteractionRecord.objects.unscoped("test setup").update(payload={"changed": True})
    again = post_rows(client, rows, HTTP_IDEMPOTENCY_KEY="batch-42")
    assert again.status_code == first.status_code and again.content == first.content
    assert InteractionRecord.objects.unscoped("test setup").count() == 1
    other = post_rows(client, [sale("S-3")], HTTP_IDEMPOTENCY_KEY="batch-42")
    assert_problem(other, 422, "idempotency_key_reused")
    assert InteractionRecord.objects.unscoped("test setup").count() == 1


def test_writing_needs_the_scope(pair, issue_key, api):
    _, key = issue_key(pair.shop, pair.shop_admin, scopes=[Scope.RECORDS_READ])
    assert_problem(post_rows(api(key), [sale("S-1")]), 403, "insufficient_scope")


def test_list_shows_own_and_shared_records_and_logs_access(pair, keys, api):
    post_rows(api(keys["shop"]), [sale("S-1"), sale("S-2", email="bob@example.org", serial="SN-2")])
    post_rows(api(keys["maker"]), [registration("W-1")])
    consent(pair.maker)
    data = api(keys["maker"]).get("/api/v1/records").json()["results"]
    assert {(r["kind"], r["own"]) for r in data} == {
        ("warranty_registration", True),
        ("sale", False),
    }
    assert AccessLogEntry.objects.filter(partner=pair.maker).count() == 1
    theirs = api(keys["maker"]).get("/api/v1/records", {"mine": "false"}).json()["results"]
    assert [r["kind"] for r in theirs] == ["sale"]
    assert "external_id" not in theirs[0] and "price_cents" not in theirs[0]["payload"]


def test_detail_of_an_invisible_record_is_404(pair, keys, api, make_partner, issue_key):
    ref = post_rows(api(keys["shop"]), [sale("S-1")]).json()["results"][0]["ref"]
    assert api(keys["shop"]).get(f"/api/v1/records/{ref}").status_code == 200
    assert_problem(api(keys["maker"]).get(f"/api/v1/records/{ref}"), 404)  # no consent yet
    third, third_admin = make_partner(name="Third")
    _, third_key = issue_key(third, third_admin, scopes=[Scope.RECORDS_READ])
    consent(pair.maker)
    assert api(keys["maker"]).get(f"/api/v1/records/{ref}").status_code == 200
    assert_problem(api(third_key).get(f"/api/v1/records/{ref}"), 404)


def test_unit_timeline_merges_both_parties_in_time_order(pair, keys, api):
    post_rows(api(keys["shop"]), [sale("S-1")])
    post_rows(api(keys["maker"]), [registration("W-1"), registration("W-2", serial="OTHER")])
    consent(pair.shop, categories=["warranty"])
    consent(pair.maker)
    response = api(keys["maker"]).get("/api/v1/units/4012345678901/SN-1/timeline")
    events = response.json()["results"]
    assert [(e["kind"], e["recorded_by"]["name"]) for e in events] == [
        ("sale", "Shop"),
        ("warranty_registration", "Maker"),
    ]
    assert_problem(api(keys["maker"]).get("/api/v1/units/4012345678902/SN-1/timeline"), 400)


def test_customer_timeline_by_identifier_or_reference(pair, keys, api):
    post_rows(
        api(keys["shop"]),
        [sale("S-1"), sale("S-2", serial="SN-2"), sale("S-3", email="bob@example.org")],
    )
    consent(pair.maker)
    by_mail = api(keys["maker"]).get(
        "/api/v1/customers/timeline", {"kind": "email", "value": "ALICE@example.org"}
    )
    events = by_mail.json()["results"]
    assert len(events) == 2
    ref = events[0]["customer"]
    by_ref = (
        api(keys["maker"]).get("/api/v1/customers/timeline", {"customer": ref}).json()["results"]
    )
    assert [e["ref"] for e in by_ref] == [e["ref"] for e in events]
    unknown = api(keys["maker"]).get(
        "/api/v1/customers/timeline", {"kind": "email", "value": "x@example.org"}
    )
    assert unknown.json()["results"] == []
    assert_problem(api(keys["maker"]).get("/api/v1/customers/timeline"), 400)


def test_cursor_pagination_walks_every_record_once(pair, keys, api):
    post_rows(api(keys["shop"]), [sale(f"S-{i}", serial=f"N{i}") for i in range(7)])
    client = api(keys["shop"])
    url, refs = "/api/v1/records?page_size=3", []
    while url:
        page = client.get(url).json()
        refs += [r["ref"] for r in page["results"]]
        url = page["next"]
    assert len(refs) == len(set(refs)) == 7


def test_openapi_documents_every_kinds_payload(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    text = json.dumps(schema["paths"]["/api/v1/records"])
    for kind in [
        "sale",
        "warranty_registration",
        "service_completion",
        "loyalty_redemption",
        "feedback",
    ]:
        assert f"{kind} payload" in text


def test_pages_say_what_the_record_serializer_says(pair, keys, api):
    """A page is written by ``represent`` rather than by a serializer per row: for own and
    shared records, with and without product, customer or an erasure, the two agree."""
    from datetime import UTC, datetime, timedelta, timezone

    from clearinghouse.records import visibility
    from clearinghouse.records.api.schema import RecordSerializer, represent

    post_rows(api(keys["shop"]), [sale("S-1"), sale("S-2", serial="SN-2", email="bob@example.org")])
    post_rows(api(keys["maker"]), [registration("W-1")])
    consent(pair.maker)
    seen = []
    for partner in (pair.maker, pair.shop):
        visible = visibility.visible_records(partner=partner)
        seen += visible.read(channel="api")
    assert {item["own"] for item in seen} == {True, False}
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    seen += [
        {**seen[0], "product": None, "customer": None, "received_at": when, "erased": True},
        {**seen[0], "occurred_at": when.astimezone(timezone(timedelta(hours=2)))},
        {k: v for k, v in seen[0].items() if k not in ("external_id", "product", "customer")},
    ]
    for item in seen:
        assert represent(item) == RecordSerializer(item).data
        assert list(represent(item)) == list(RecordSerializer(item).data)
