"""Hostile and ordinary bodies against the API: each case of issue 17 pinned down, then the same
bodies sent to every endpoint that takes one. No 5xx, nothing stored by a refused body, a bad
row rejected by name while its batch goes on."""

import io
import json

import orjson
import pytest
from django.test import Client
from django.urls import reverse

from clearinghouse.records.models import InteractionRecord
from partners.models import Scope
from telemetry.models import Reading
from tests.partners.test_api import assert_problem
from tests.records.conftest import sale
from tests.telemetry.conftest import ago, reading, register

DEEP = b"[" * 100_000 + b"]" * 100_000
JSON = "application/json"
NDJSON = "application/x-ndjson"


@pytest.fixture
def shop(pair, issue_key, api):
    return api(issue_key(pair.shop, pair.shop_admin)[1])


@pytest.fixture
def maker(pair, issue_key, api):
    return api(issue_key(pair.maker, pair.maker_admin)[1])


def post(client, path, body, content_type=JSON, **extra):
    return client.post(path, body, content_type=content_type, **extra)


def feedback(external_id, comment, **overrides):
    row = {
        "external_id": external_id,
        "kind": "feedback",
        "occurred_at": "2026-10-01T12:00:00Z",
        "customer": {"kind": "email", "value": "alice@example.org"},
        "payload": {"rating": 4, "comment": comment},
    }
    row.update(overrides)
    return row


def test_a_single_record_over_4_kib_is_taken_whole(pair, shop):
    """Item 1: the first read of 4 KiB was pushed back and the next read returned only it."""
    row = feedback("FB-1", "ж" * 975)
    body = json.dumps(row).encode()  # \u0436 escapes: about 6 KiB
    assert len(body) > 5000
    response = post(shop, "/api/v1/records", body)
    assert response.status_code == 201, response.content
    assert InteractionRecord.objects.unscoped("test setup").get().payload["comment"] == "ж" * 975


def test_a_single_record_over_the_element_limit_is_413(pair, shop, settings):
    body = json.dumps(feedback("FB-1", "x" * 400)).encode() + b" " * (1 << 20)
    assert_problem(post(shop, "/api/v1/records", body), 413)


@pytest.mark.parametrize("path", ["/api/v1/records", "/api/v1/telemetry/readings"])
def test_deep_nesting_is_a_rejected_row_at_once(pair, maker, path):
    """Item 7: 100,000 brackets held a worker until gunicorn killed it."""
    body = assert_refused_or_rejected(post(maker, path, DEEP))
    assert "nests deeper" in json.dumps(body)


def test_deep_nesting_inside_one_row_rejects_that_row_only(pair, shop):
    deep_row = b'{"external_id": "S-9", "payload": ' + DEEP + b"}"
    body = b"[" + deep_row + b"," + orjson.dumps(sale("S-1")) + b"]"
    results = post(shop, "/api/v1/records", body).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert "nests deeper" in results[0]["errors"][0]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/consents",
        "/api/v1/telemetry/devices",
        "/api/v1/telemetry/rules",
        "/api/v1/warranty-terms",
        "/api/v1/webhooks",
    ],
)
def test_deep_nesting_on_a_parsed_endpoint_is_a_400(pair, maker, path):
    """Item 8: the DRF parser's recursion ended in a 500 RecursionError."""
    body = assert_problem(post(maker, path, DEEP), 400)
    assert "nests deeper" in body["detail"]
    nested = orjson.dumps({"a": json.loads("[" * 20 + "]" * 20)})
    body = assert_problem(post(maker, path, nested), 400)
    assert body["errors"][0]["field"].startswith("a")


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_an_offset_past_the_calendar_rejects_the_row_not_the_batch(pair, shop, maker, moment):
    """Item 9: 500 OverflowError; the valid rows of the batch were lost with it."""
    results = post(
        shop, "/api/v1/records", orjson.dumps([sale("S-1", occurred_at=moment), sale("S-2")])
    ).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert results[0]["errors"] == [
        {"field": "occurred_at", "message": "is out of range: from 1900 to 9000"}
    ]

    register(pair.maker, "D-1")
    rows = [
        reading("D-1", "power_w", 1, ago(minutes=1)),
        {**reading("D-1", "power_w", 2, ago(minutes=2)), "ts": moment},
    ]
    answer = post(maker, "/api/v1/telemetry/readings", orjson.dumps(rows)).json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["errors"][0]["field"] == "ts"


def test_a_lone_surrogate_rejects_its_row_by_name(pair, shop):
    """Item 10: 500 UnicodeDecodeError."""
    body = b'[{"external_id": "\\udc00"}, ' + orjson.dumps(sale("S-1")) + b"]"
    results = post(shop, "/api/v1/records", body).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert results[0]["errors"][0]["field"] == "external_id"
    ndjson = b'{"external_id": "S-2", "payload": {"store": "\\ud800"}}\n'
    results = post(shop, "/api/v1/records", ndjson, NDJSON).json()["results"]
    assert results[0]["errors"][0]["field"] == "payload.store"


@pytest.mark.parametrize("number", [b"1" + b"0" * 30, b"1e400", b"18446744073709551615"])
@pytest.mark.parametrize("content_type", [JSON, NDJSON])
def test_an_over_large_number_rejects_its_row_naming_the_field(pair, shop, number, content_type):
    """Item 11: "integer overflow" refused the whole batch and named nothing."""
    bad = orjson.dumps(sale("S-9")).replace(b"49900", number)
    good = orjson.dumps(sale("S-1"))
    body = b"[" + bad + b"," + good + b"]" if content_type == JSON else bad + b"\n" + good
    results = post(shop, "/api/v1/records", body, content_type).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert results[0]["errors"][0]["field"] == "payload.price_cents"


def test_an_over_large_reading_value_is_rejected_by_name(pair, maker):
    register(pair.maker, "D-1")
    good = orjson.dumps(reading("D-1", "power_w", 1, ago(minutes=1)))
    bad = good.replace(b'"value":1', b'"value":1e400')
    answer = post(maker, "/api/v1/telemetry/readings", b"[" + bad + b"," + good + b"]").json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["errors"][0]["field"] == "value"


def test_an_idempotency_key_belongs_to_its_endpoint(pair, maker):
    """Item 12: the same key and body sent to /telemetry/readings replayed the records answer."""
    register(pair.maker, "D-1")
    body = orjson.dumps([reading("D-1", "power_w", 1, ago(minutes=1))])
    first = post(maker, "/api/v1/records", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 200
    again = post(maker, "/api/v1/telemetry/readings", body, HTTP_IDEMPOTENCY_KEY="k-1")
    problem = assert_problem(again, 422, "idempotency_key_reused")
    assert "/api/v1/records" in problem["detail"]
    assert not Reading.objects.exists()
    fresh = post(maker, "/api/v1/telemetry/readings", body, HTTP_IDEMPOTENCY_KEY="k-2")
    assert fresh.json()["accepted"] == 1


def assert_refused_or_rejected(response):
    """A batch endpoint answers a body that is one bad element with that element rejected
    (200), or refuses the body (4xx problem); never a 5xx."""
    assert response.status_code < 500, response.content
    body = response.json()
    if response.status_code == 200:
        assert body.get("rejected") == 1 and body.get("accepted") == 0, body
    else:
        assert response["Content-Type"].startswith("application/problem+json")
    return body


# --- bodies of known length and chunked ones, at the WSGI level ---------------------------------


def wsgi_post(path, body, *, key, content_type=NDJSON, chunked=True, terminated=True):
    """Call the project's WSGI application as gunicorn does for a chunked body: no
    Content-Length, Transfer-Encoding: chunked, a stream that ends by itself."""
    from clearinghouse.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.input_terminated": terminated,
        "CONTENT_TYPE": content_type,
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_HOST": "testserver",
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    chunks = application(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return answer["status"], answer["headers"], content


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content_type", [NDJSON, JSON])
def test_a_chunked_upload_is_read_not_dropped(make_partner, issue_key, content_type):
    """Item 4: NDJSON sent chunked answered 200 accepted: 0 and stored nothing."""
    from partners.models import Partner

    shop, admin = make_partner(kind=Partner.Kind.RETAILER)
    key = issue_key(shop, admin, scopes=[Scope.RECORDS_WRITE])[1]
    rows = [sale("S-1"), sale("S-2", serial="SN-2")]
    body = (
        b"\n".join(orjson.dumps(r) for r in rows) if content_type == NDJSON else orjson.dumps(rows)
    )
    status, _, content = wsgi_post("/api/v1/records", body, key=key, content_type=content_type)
    assert status == 200, content
    assert orjson.loads(content)["created"] == 2
    assert InteractionRecord.objects.unscoped("test setup").filter(submitted_by=shop).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_a_server_cannot_end_is_411(make_partner, issue_key):
    shop, admin = make_partner()
    key = issue_key(shop, admin)[1]
    status, headers, content = wsgi_post("/api/v1/records", b"{}", key=key, terminated=False)
    assert status == 411 and headers["Content-Type"] == "application/problem+json"
    assert orjson.loads(content)["status"] == 411


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_every_limit_is_413_before_django(make_partner, issue_key, settings):
    settings.INGEST_MAX_BODY_BYTES = settings.API_MAX_BODY_BYTES = 1000
    settings.PAGE_MAX_BODY_BYTES = 1000
    shop, admin = make_partner()
    status, headers, _ = wsgi_post("/api/v1/records", b" " * 5000, key=issue_key(shop, admin)[1])
    assert status == 413 and headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path, setting",
    [
        ("/api/v1/records", "INGEST_MAX_BODY_BYTES"),
        ("/api/v1/webhooks", "API_MAX_BODY_BYTES"),
    ],
)
def test_a_body_over_its_endpoints_limit_is_413_unread(pair, maker, settings, path, setting):
    setattr(settings, setting, 100)
    problem = assert_problem(post(maker, path, b"[" + b" " * 200 + b"]"), 413)
    assert "100 bytes" in problem["detail"]


def test_a_page_form_over_its_limit_is_413(pair, settings):
    settings.PAGE_MAX_BODY_BYTES = 100
    client = Client()
    response = client.post("/accounts/login/", {"username": "x" * 200, "password": "y"})
    assert response.status_code == 413


# --- smaller items of 13 ----------------------------------------------------------------------


def test_consent_evidence_needs_a_zone_and_a_moment_in_the_past(pair, shop):
    base = {
        "identifier": {"kind": "email", "value": "alice@example.org"},
        "purpose": "warranty",
        "evidence": {"channel": "till", "text_shown": "Yes, share it."},
    }
    for moment, message in [
        ("8999-01-01T00:00:00Z", "future"),
        ("9999-01-01T00:00:00Z", "out of range"),
        ("2026-01-01T10:00:00", "time zone"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ]:
        body = {**base, "evidence": {**base["evidence"], "collected_at": moment}}
        problem = assert_problem(shop.post("/api/v1/consents", body, format="json"), 400)
        assert problem["errors"][0]["field"] == "evidence.collected_at", problem
        assert message in problem["errors"][0]["message"]


@pytest.mark.parametrize("cursor", ["!!!", "", "bm9wZQ", "cD0x", "%00"])
def test_a_cursor_the_api_did_not_give_out_is_a_400(pair, shop, cursor):
    problem = assert_problem(shop.get(f"/api/v1/records?cursor={cursor}"), 400, "validation")
    assert problem["errors"][0]["field"] == "cursor"


def test_retry_after_and_the_body_say_the_same(pair, issue_key, api, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    client = api(issue_key(pair.shop, pair.shop_admin)[1])
    client.get("/api/v1/partners/me")
    refused = client.get("/api/v1/partners/me")
    problem = assert_problem(refused, 429)
    assert refused["Retry-After"] == str(problem["retry_after"])


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path", ["/api/v1/re%0Acords", "/api/v1/nothing", "/api/nothing", "/api/v1/records/%0A"]
)
def test_api_errors_are_problem_json_whatever_debug_says(pair, settings, debug, path, shop):
    settings.DEBUG = debug
    response = shop.get(path)
    assert_problem(response, 404)


def test_an_api_server_error_is_problem_json_in_debug_too(pair, settings, monkeypatch, shop):
    from clearinghouse.records.api import views

    settings.DEBUG = True

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.RecordDetailView, "get", broken)
    shop.raise_request_exception = False
    response = shop.get(
        reverse("api:record-detail", kwargs={"ref": "0" * 8 + "-0000-0000-0000-" + "0" * 12})
    )
    problem = assert_problem(response, 500)
    assert "a bug" not in response.content.decode()
    assert problem["detail"].startswith("Something went wrong")


def test_a_number_for_a_string_field_is_refused(pair, maker, issue_key):
    """``{"reason": 0}`` was taken as the text "0"."""
    credential, _ = issue_key(pair.maker, pair.maker_admin)
    path = f"/api/v1/credentials/{credential.pk}/revoke"
    problem = assert_problem(maker.post(path, {"reason": 0}, format="json"), 400, "validation")
    assert problem["errors"][0]["field"] == "reason"
    body = {"url": "https://a.example/h", "event_types": ["record.shared"], "description": 5}
    problem = assert_problem(maker.post("/api/v1/webhooks", body, format="json"), 400)
    assert problem["errors"][0]["field"] == "description"


# --- the schema says what the server enforces --------------------------------------------------


def test_a_trailing_newline_is_no_part_of_an_external_id_or_a_serial(pair, shop):
    """``$`` in a Python pattern matches before a final newline; the schema's does not."""
    rows = [sale("S-1\n"), sale("S-2", serial="SN-2\n"), sale("S-3")]
    results = post(shop, "/api/v1/records", orjson.dumps(rows)).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "created"]
    assert [r["errors"][0]["field"] for r in results[:2]] == ["external_id", "product.serial"]


@pytest.mark.parametrize(
    "query, field",
    [("serial=" + "x" * 65, "serial"), ("serial=a%0A", "serial"), ("gtin=12ab", "gtin")],
)
def test_a_filter_outside_its_pattern_is_a_400_not_cut(pair, shop, query, field):
    problem = assert_problem(shop.get(f"/api/v1/records?{query}"), 400, "validation")
    assert problem["errors"][0]["field"] == field


def test_an_id_that_is_no_uuid_is_a_404(pair, maker):
    assert_problem(maker.get("/api/v1/discrepancies/" + "0" * 36), 404)
    assert_problem(maker.post("/api/v1/discrepancies/" + "0" * 36 + "/dismiss", {}), 404)


def test_the_schema_states_patterns_lengths_and_minimum_items(db, client):
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    records = schema["paths"]["/api/v1/records"]
    params = {p["name"]: p["schema"] for p in records["get"]["parameters"]}
    assert params["gtin"]["pattern"] and params["serial"]["pattern"]
    assert components["ConsentCreateRequest"]["properties"]["categories"]["minItems"] == 1
    assert components["EndpointCreateRequest"]["properties"]["event_types"]["minItems"] == 1
    assert components["EndpointCreateRequest"]["properties"]["url"]["pattern"].startswith("^https")
    assert components["WarrantyTermsRequest"]["properties"]["gtin"]["pattern"]
    assert components["RuleRequest"]["properties"]["conditions"]["minItems"] == 1
    body = schema["paths"]["/api/v1/telemetry/devices"]["post"]["requestBody"]
    assert body["required"] is True
