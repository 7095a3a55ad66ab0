"""Bad input to the API gets a clear 4xx problem, never a 500 and never silence: the cases the
schema fuzzer (tests/test_fuzz_api.py) found, each pinned down."""

from datetime import timedelta

import pytest
from django.utils import timezone

from partners.models import Scope
from tests.partners.test_api import assert_problem


@pytest.fixture
def key(make_partner, issue_key):
    partner, admin = make_partner()
    return issue_key(partner, admin)[1]


@pytest.mark.parametrize("size", ["abc", "0", "-3", "1.5", "", "²"])
def test_a_page_size_that_is_not_a_whole_number_is_a_problem(key, api, size):
    body = assert_problem(api(key).get(f"/api/v1/credentials?page_size={size}"), 400, "validation")
    assert body["errors"][0]["field"] == "page_size"


def test_a_page_size_above_the_maximum_is_cut_to_it(key, api):
    response = api(key).get("/api/v1/credentials?page_size=100000")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_a_post_to_an_unknown_api_address_is_a_404_not_a_csrf_failure(key, api):
    response = api(key).post("/api/v1/consents/not-a-uuid/revoke", {}, format="json")
    assert_problem(response, 404)


def test_a_customer_timeline_with_an_unknown_identifier_kind_is_a_problem(key, api):
    response = api(key).get(
        "/api/v1/customers/timeline?kind=passport&customer=2c20fead-33e8-2820-8778-2c8118730a6e"
    )
    body = assert_problem(response, 400, "validation")
    assert body["errors"][0]["field"] == "kind"


def test_a_comment_answers_201_as_documented(pair, issue_key, api):
    from clearinghouse.reconciliation.engine import reconcile_pair
    from clearinghouse.records.services import records_ingest
    from tests.records.conftest import registration

    records_ingest(partner=pair.maker, rows=[registration()], max_rows=10)
    reconcile_pair(manufacturer=pair.maker, retailer=pair.shop, trigger="test")
    key = issue_key(pair.maker, pair.maker_admin, scopes=[Scope.DISCREPANCIES_WRITE])[1]
    discrepancy = api(issue_key(pair.maker, pair.maker_admin)[1]).get("/api/v1/discrepancies")
    pk = discrepancy.json()["results"][0]["id"]
    response = api(key).post(f"/api/v1/discrepancies/{pk}/comments", {"text": "hi"}, format="json")
    assert response.status_code == 201
    schema = api().get("/api/schema/?format=json").json()
    documented = schema["paths"]["/api/v1/discrepancies/{id}/comments"]["post"]["responses"]
    assert "201" in documented and "200" not in documented


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/records?mine=1",
        "/api/v1/records?kind=",
        "/api/v1/discrepancies?status=",
        "/api/v1/discrepancies?severity=urgent",
        "/api/v1/webhook-deliveries?status=",
        "/api/v1/webhook-deliveries?endpoint=",
        "/api/v1/notices?acknowledged=",
        "/api/v1/notices?acknowledged=yes",
        "/api/v1/telemetry/signals?status=",
    ],
)
def test_a_filter_with_a_value_it_does_not_allow_is_a_problem_not_ignored(key, api, path):
    name = path.split("?")[1].split("=")[0]
    body = assert_problem(api(key).get(path), 400, "validation")
    assert body["errors"][0]["field"] == name


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/telemetry/devices?model_name=n%00x",
        "/api/v1/telemetry/devices/D%001",
        "/api/v1/records?serial=S%00",
        "/api/v1/discrepancies?serial=S%00",
    ],
)
def test_a_nul_character_in_a_query_or_path_is_a_problem_not_a_500(key, api, path):
    assert_problem(api(key).get(path), 400, "validation")


def test_a_nul_character_in_a_record_payload_rejects_the_row(pair, issue_key, api):
    from tests.records.conftest import sale

    key = issue_key(pair.shop, pair.shop_admin)[1]
    row = sale(payload={"price_cents": 100, "currency": "EUR", "store": "Main\x00Street"})
    body = assert_problem(api(key).post("/api/v1/records", row, format="json"), 400, "validation")
    assert body["errors"][0]["field"] == "payload.store"
    response = api(key).post("/api/v1/records", [row, sale()], format="json")
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "created"]


def test_a_nul_character_in_a_device_or_a_reading_is_refused_not_a_500(
    make_partner, issue_key, api
):
    maker, admin = make_partner()
    client = api(issue_key(maker, admin)[1])
    device = {"serial": "D1", "gtin": "04012345678901", "model_name": "Dish\x00washer"}
    body = assert_problem(client.post("/api/v1/telemetry/devices", device, format="json"), 400)
    assert body["errors"][0]["field"] == "model_name"
    an_hour_ago = (timezone.now() - timedelta(hours=1)).isoformat()
    reading = {"device": "D\x001", "ts": an_hour_ago, "metric": "power_w", "value": 1}
    response = client.post("/api/v1/telemetry/readings", [reading], format="json")
    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"index": 0, "field": "device", "message": "is not a device you registered"}
    ]
