"""The webhooks API: endpoints (secret shown once), the delivery log, redelivery, scopes and
tenancy (another partner's endpoint or delivery is a 404)."""

import uuid

import pytest

from partners import webhooks
from partners.models import Partner, PartnerEvent, Scope, WebhookDelivery, WebhookEndpoint
from tests.partners.test_api import assert_problem
from tests.support.webhook_receiver import receiver_fixture  # noqa: F401


@pytest.fixture
def shop(make_partner, issue_key):
    partner, admin = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")
    _, key = issue_key(partner, admin, scopes=[Scope.WEBHOOKS_MANAGE])
    return partner, admin, key


@pytest.fixture
def stranger(make_partner, issue_key):
    partner, admin = make_partner(name="Stranger")
    _, key = issue_key(partner, admin, scopes=[Scope.WEBHOOKS_MANAGE])
    return partner, admin, key


def create(api, key, url, event_types=("record.shared",), **extra):
    return api(key).post(
        "/api/v1/webhooks", {"url": url, "event_types": list(event_types), **extra}, format="json"
    )


def test_creating_an_endpoint_returns_its_secret_once(shop, api, receiver):
    partner, _, key = shop
    response = create(api, key, receiver.url, description="ERP")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == receiver.url and body["event_types"] == ["record.shared"]
    assert body["active"] is True and body["description"] == "ERP"
    endpoint = WebhookEndpoint.objects.unscoped("test setup").get()
    assert endpoint.partner == partner and endpoint.secret == body["secret"]
    listed = api(key).get("/api/v1/webhooks").json()["results"]
    detail = api(key).get(f"/api/v1/webhooks/{endpoint.pk}").json()
    assert [e["id"] for e in listed] == [str(endpoint.pk)]
    assert "secret" not in listed[0] and "secret" not in detail
    event = PartnerEvent.objects.unscoped("test setup").get(
        partner=partner, action="webhook.created"
    )
    assert event.credential is not None and body["secret"] not in str(event.detail)


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"url": "https://u:p@hooks.example/h", "event_types": ["record.shared"]}, "url"),
        ({"url": "gopher://hooks.example/h", "event_types": ["record.shared"]}, "url"),
        ({"url": "https://hooks.example/h", "event_types": ["nope"]}, "event_types[0]"),
        ({"url": "https://hooks.example/h", "event_types": []}, "event_types"),
        ({"url": "https://hooks.example/h"}, "event_types"),
    ],
)
def test_bad_endpoints_are_validation_problems(shop, api, payload, field):
    _, _, key = shop
    body = assert_problem(api(key).post("/api/v1/webhooks", payload, format="json"), 400)
    assert body["type"].endswith("validation")
    assert field in [e["field"] for e in body["errors"]]
    assert not WebhookEndpoint.objects.unscoped("test setup").exists()


def test_http_endpoints_are_refused_in_production(shop, api, settings):
    _, _, key = shop
    settings.WEBHOOKS_ALLOW_HTTP = False
    body = assert_problem(create(api, key, "http://hooks.example/h"), 400, "validation")
    assert "HTTPS" in body["errors"][0]["message"]


def test_the_scope_is_needed(make_partner, issue_key, api):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin, scopes=[Scope.PARTNER_READ])
    assert_problem(api(key).get("/api/v1/webhooks"), 403, "insufficient_scope")
    assert_problem(api(key).get("/api/v1/webhook-deliveries"), 403, "insufficient_scope")
    assert_problem(create(api, key, "https://hooks.example/h"), 403, "insufficient_scope")


def test_deleting_an_endpoint_removes_it_and_its_log(
    shop, api, receiver, django_capture_on_commit_callbacks
):
    partner, _, key = shop
    endpoint_id = create(api, key, receiver.url).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_emit(partner=partner, event_type="record.shared", subject={"ref": "R"})
    response = api(key).delete(f"/api/v1/webhooks/{endpoint_id}")
    assert response.status_code == 204
    assert (
        not WebhookEndpoint.objects.unscoped("test setup").exists()
        and not WebhookDelivery.objects.unscoped("test setup").exists()
    )
    assert_problem(api(key).get(f"/api/v1/webhooks/{endpoint_id}"), 404)


def test_rotating_returns_a_new_secret(shop, api, receiver):
    _, _, key = shop
    created = create(api, key, receiver.url).json()
    rotated = api(key).post(f"/api/v1/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != created["secret"]
    assert rotated.json()["secret_rotated_at"]


def test_ping_and_the_delivery_log_with_redelivery(
    shop, api, receiver, django_capture_on_commit_callbacks
):
    _, _, key = shop
    endpoint_id = create(api, key, receiver.url).json()["id"]
    receiver.fail_first(1, status=502)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(key).post(f"/api/v1/webhooks/{endpoint_id}/ping")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"  # the worker sends it after the answer
    ping = api(key).get(f"/api/v1/webhook-deliveries/{response.json()['id']}").json()
    assert ping["event"]["type"] == "ping" and ping["status"] == "failed"
    assert ping["last_status_code"] == 502 and ping["next_attempt_at"]

    listed = api(key).get("/api/v1/webhook-deliveries", {"status": "failed"}).json()["results"]
    assert [d["id"] for d in listed] == [ping["id"]]
    assert (
        api(key).get("/api/v1/webhook-deliveries", {"status": "succeeded"}).json()["results"] == []
    )
    by_endpoint = api(key).get("/api/v1/webhook-deliveries", {"endpoint": endpoint_id}).json()
    assert len(by_endpoint["results"]) == 1

    with django_capture_on_commit_callbacks(execute=True):
        again = api(key).post(f"/api/v1/webhook-deliveries/{ping['id']}/redeliver")
    assert again.status_code == 202
    detail = api(key).get(f"/api/v1/webhook-deliveries/{ping['id']}").json()
    assert (
        detail["status"] == "succeeded" and detail["redeliveries"] == 0
    )  # a retry brought forward
    assert [a["status_code"] for a in detail["attempt_log"]] == [200, 502]
    assert len(receiver.requests) == 2


def test_bad_delivery_filters_are_problems(shop, stranger, api, receiver):
    _, _, key = shop
    _, _, stranger_key = stranger
    foreign = create(api, stranger_key, receiver.url).json()["id"]
    assert_problem(api(key).get("/api/v1/webhook-deliveries", {"status": "lost"}), 400)
    assert_problem(api(key).get("/api/v1/webhook-deliveries", {"endpoint": "x"}), 400)
    assert_problem(api(key).get("/api/v1/webhook-deliveries", {"endpoint": foreign}), 400)


def test_another_partners_endpoints_and_deliveries_are_404(
    shop, stranger, api, receiver, django_capture_on_commit_callbacks
):
    _, _, key = shop
    stranger_partner, _, stranger_key = stranger
    endpoint_id = create(api, stranger_key, receiver.url).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_emit(
            partner=stranger_partner, event_type="record.shared", subject={"ref": "R"}
        )
    delivery_id = WebhookDelivery.objects.unscoped("test setup").get().pk
    missing = uuid.uuid4()
    for path in [f"/api/v1/webhooks/{endpoint_id}", f"/api/v1/webhooks/{missing}"]:
        assert_problem(api(key).get(path), 404)
        assert_problem(api(key).delete(path), 404)
        assert_problem(api(key).post(f"{path}/rotate-secret"), 404)
        assert_problem(api(key).post(f"{path}/ping"), 404)
    for path in [
        f"/api/v1/webhook-deliveries/{delivery_id}",
        f"/api/v1/webhook-deliveries/{missing}",
    ]:
        assert_problem(api(key).get(path), 404)
        assert_problem(api(key).post(f"{path}/redeliver"), 404)
    assert api(key).get("/api/v1/webhooks").json()["results"] == []
    assert api(key).get("/api/v1/webhook-deliveries").json()["results"] == []
    assert WebhookEndpoint.objects.unscoped("test setup").filter(pk=endpoint_id).exists()
    assert len(receiver.requests) == 1


def test_schema_documents_the_webhook_endpoints(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert "/api/v1/webhooks" in paths and "/api/v1/webhooks/{id}/rotate-secret" in paths
    assert "/api/v1/webhook-deliveries/{id}/redeliver" in paths
