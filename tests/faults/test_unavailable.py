"""A backing service away is a 503 with Retry-After (problem+json on the API, a plain page
elsewhere), or a request that goes on where the product decided so — never a 500."""

import pytest
from django.db import OperationalError

from partners.api import authentication

from .servers import free_port

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": None,  # set per test: a loopback port nothing listens on
    "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
}


@pytest.fixture
def dead_cache(settings):
    """Django renews its cache connections when CACHES changes."""
    settings.CACHES = {"default": {**DEAD_REDIS, "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}


def test_the_database_away_is_a_503_problem_with_retry_after(
    api, make_partner, issue_key, monkeypatch
):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin)

    def unreachable(self, request):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(authentication.ApiKeyAuthentication, "authenticate", unreachable)
    response = api(key).get("/api/v1/partners/me")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["type"] == "urn:clearinghouse:problem:unavailable" and body["status"] == 503


def test_redis_away_lets_the_api_through_and_refuses_sign_in_links(
    api, client, make_partner, issue_key, dead_cache
):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin)
    # The rate limit fails open: the partner is served.
    assert api(key).get("/api/v1/partners/me").status_code == 200
    # The sign-in link limit fails closed: a plain 503 page, no link sent.
    response = client.post("/me/", {"email": "alice@example.org"})
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert b"Briefly unavailable" in response.content
