"""The partner API: authentication, scopes, tenancy, throttling and problem+json errors."""

from datetime import timedelta

import pytest
from django.utils import timezone

from partners import services
from partners.models import ApiCredential, Partner, Role, Scope

PROBLEM = "application/problem+json"


def assert_problem(response, status, type_suffix=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if type_suffix:
        assert body["type"] == f"urn:clearinghouse:problem:{type_suffix}"
    return body


def test_me_describes_the_calling_partner_and_key(make_partner, issue_key, api):
    partner, admin = make_partner()
    credential, key = issue_key(partner, admin, scopes=[Scope.PARTNER_READ])
    response = api(key).get("/api/v1/partners/me")
    assert response.status_code == 200
    body = response.json()
    assert body["partner"]["id"] == str(partner.pk)
    assert body["credential"]["prefix"] == credential.prefix
    assert body["scopes"] == ["partner:read"]
    assert "secret_hash" not in body["credential"]


def test_missing_key_is_401_with_bearer_challenge(db, api):
    response = api().get("/api/v1/partners/me")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer a b",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer nonsense",
        "Bearer chk_x_y",
    ],
)
def test_malformed_or_unknown_keys_are_401(db, api, header):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_problem(client.get("/api/v1/partners/me"), 401)


def test_revoked_and_expired_keys_say_so(make_partner, issue_key, api):
    partner, admin = make_partner()
    revoked, revoked_key = issue_key(partner, admin)
    services.credential_revoke(credential=revoked, actor=admin)
    assert_problem(api(revoked_key).get("/api/v1/partners/me"), 401, "revoked")
    expired, expired_key = issue_key(partner, admin, expires_at=timezone.now() + timedelta(days=1))
    ApiCredential.objects.unscoped("test setup").filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert_problem(api(expired_key).get("/api/v1/partners/me"), 401, "expired")


def test_key_without_the_scope_is_403(make_partner, issue_key, api):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin, scopes=[Scope.RECORDS_READ])
    body = assert_problem(api(key).get("/api/v1/credentials"), 403, "insufficient_scope")
    assert "credentials:manage" in body["detail"]


def test_suspended_partners_keys_are_refused_everywhere(make_partner, issue_key, api, operator):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin)
    assert api(key).get("/api/v1/partners/me").status_code == 200
    services.partner_suspend(partner=partner, actor=operator)
    for url in ["/api/v1/partners/me", "/api/v1/credentials"]:
        assert_problem(api(key).get(url), 403, "partner_inactive")


def test_credentials_list_holds_only_own_keys(make_partner, issue_key, api):
    a, a_admin = make_partner()
    b, b_admin = make_partner(kind=Partner.Kind.RETAILER)
    _, a_key = issue_key(a, a_admin)
    b_cred, _ = issue_key(b, b_admin)
    ids = {row["id"] for row in api(a_key).get("/api/v1/credentials").json()["results"]}
    assert str(b_cred.pk) not in ids and len(ids) == 1


def test_foreign_credential_is_404_and_cannot_be_revoked(make_partner, issue_key, api):
    a, a_admin = make_partner()
    b, b_admin = make_partner(kind=Partner.Kind.RETAILER)
    _, a_key = issue_key(a, a_admin)
    b_cred, _ = issue_key(b, b_admin)
    missing = "00000000-0000-0000-0000-000000000000"
    foreign = assert_problem(api(a_key).get(f"/api/v1/credentials/{b_cred.pk}"), 404)
    absent = assert_problem(api(a_key).get(f"/api/v1/credentials/{missing}"), 404)
    assert {k: v for k, v in foreign.items() if k != "instance"} == {
        k: v for k, v in absent.items() if k != "instance"
    }
    assert_problem(
        api(a_key).post(f"/api/v1/credentials/{b_cred.pk}/revoke", {}, format="json"), 404
    )
    b_cred.refresh_from_db()
    assert b_cred.revoked_at is None


def test_revoke_over_the_api_stops_the_key(make_partner, issue_key, api):
    partner, admin = make_partner()
    _, manager_key = issue_key(partner, admin, scopes=[Scope.CREDENTIALS_MANAGE])
    target, target_key = issue_key(partner, admin)
    response = api(manager_key).post(
        f"/api/v1/credentials/{target.pk}/revoke", {"reason": "leaked"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert_problem(api(target_key).get("/api/v1/partners/me"), 401, "revoked")
    event = partner.events.get(action="credential.revoked")
    assert event.detail["reason"] == "leaked"


def test_wrong_method_media_type_and_json_are_problems(make_partner, issue_key, api):
    partner, admin = make_partner()
    credential, key = issue_key(partner, admin)
    client = api(key)
    assert_problem(client.delete(f"/api/v1/credentials/{credential.pk}"), 405)
    assert_problem(
        client.post(
            f"/api/v1/credentials/{credential.pk}/revoke", "reason=x", content_type="text/plain"
        ),
        415,
    )
    assert_problem(
        client.post(
            f"/api/v1/credentials/{credential.pk}/revoke",
            "{not json",
            content_type="application/json",
        ),
        400,
    )
    body = assert_problem(
        client.post(
            f"/api/v1/credentials/{credential.pk}/revoke", {"reason": "x" * 501}, format="json"
        ),
        400,
        "validation",
    )
    assert body["errors"][0]["field"] == "reason"
    credential.refresh_from_db()
    assert credential.revoked_at is None  # bad input changed nothing


def test_unknown_api_address_is_problem_json_even_for_browsers(make_partner, issue_key, api):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin)
    assert_problem(api(key).get("/api/v1/nothing-here", HTTP_ACCEPT="text/html"), 404)
    assert_problem(api().get("/api/v1/partners/me", HTTP_ACCEPT="text/html"), 401)


def test_rate_limit_per_credential_answers_429(make_partner, issue_key, api):
    partner, admin = make_partner()
    limited, limited_key = issue_key(partner, admin)
    ApiCredential.objects.unscoped("test setup").filter(pk=limited.pk).update(
        rate_limit_per_minute=3
    )
    _, other_key = issue_key(partner, admin)
    client = api(limited_key)
    assert [client.get("/api/v1/partners/me").status_code for _ in range(3)] == [200] * 3
    response = client.get("/api/v1/partners/me")
    body = assert_problem(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1 and body["retry_after"] >= 1
    assert api(other_key).get("/api/v1/partners/me").status_code == 200  # per credential


@pytest.mark.parametrize(
    "role,credentials_status", [(Role.ADMIN, 200), (Role.ANALYST, 403), (Role.VIEWER, 403)]
)
def test_staff_on_browsable_api_have_their_roles_scopes(
    make_partner, add_staff, client, role, credentials_status
):
    partner, admin = make_partner()
    user = admin if role == Role.ADMIN else add_staff(partner, role, admin)
    client.force_login(user)
    assert client.get("/api/v1/partners/me", HTTP_ACCEPT="application/json").status_code == 200
    assert (
        client.get("/api/v1/credentials", HTTP_ACCEPT="application/json").status_code
        == credentials_status
    )
    page = client.get("/api/v1/partners/me", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"<html" in page.content


def test_session_writes_need_csrf(make_partner, issue_key):
    from django.test import Client

    partner, admin = make_partner()
    credential, _ = issue_key(partner, admin)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(
        f"/api/v1/credentials/{credential.pk}/revoke", {}, content_type="application/json"
    )
    assert_problem(response, 403)
    credential.refresh_from_db()
    assert credential.revoked_at is None


def test_pending_partners_staff_are_refused_on_the_api(make_partner, client):
    _, admin = make_partner(status=Partner.Status.PENDING)
    client.force_login(admin)
    assert_problem(
        client.get("/api/v1/partners/me", HTTP_ACCEPT="application/json"), 403, "partner_inactive"
    )


def test_operator_without_partner_is_not_an_api_user(operator, client):
    client.force_login(operator)
    assert_problem(client.get("/api/v1/partners/me", HTTP_ACCEPT="application/json"), 401)


def test_openapi_schema_documents_bearer_keys_and_docs_need_no_cdn(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "/api/v1/partners/me" in body["paths"]
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower() and "https://" not in docs
