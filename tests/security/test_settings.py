"""Production settings: HTTPS only (HSTS, secure cookies), the browser security headers, and
passwords hashed with Argon2 at Django's current work factor."""

import json
import sys

from django.contrib.auth.hashers import Argon2PasswordHasher, identify_hasher, make_password

from clearinghouse.settings import base
from tests.support.waiting import run
from tests.test_platform import ROOT, production_env

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in %r}, default=str))
"""
NAMES = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SECURE",
    "X_FRAME_OPTIONS",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "CONTENT_SECURITY_POLICY",
    "CONTENT_SECURITY_POLICY_REPORT_ONLY",
    "PERMISSIONS_POLICY",
    "PASSWORD_HASHERS",
    "MIDDLEWARE",
    "LOG_FORMAT",
]


def production_settings():
    result = run(
        [sys.executable, "-c", SHOW_SETTINGS % NAMES],
        what="the production settings",
        check=False,
        cwd=ROOT,
        env=production_env(),
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_is_https_only_with_secure_cookies_and_strict_headers():
    s = production_settings()
    assert s["DEBUG"] is False and s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert s["SESSION_COOKIE_SECURE"] and s["SESSION_COOKIE_HTTPONLY"] and s["CSRF_COOKIE_SECURE"]
    assert s["X_FRAME_OPTIONS"] == "DENY" and s["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert s["SECURE_REFERRER_POLICY"] == "same-origin"
    csp = s["CONTENT_SECURITY_POLICY"]
    assert not s["CONTENT_SECURITY_POLICY_REPORT_ONLY"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert not any("unsafe" in source for sources in csp.values() for source in sources)
    assert "camera=()" in s["PERMISSIONS_POLICY"]
    assert "clearinghouse.middleware.SecurityHeadersMiddleware" in s["MIDDLEWARE"]
    assert s["PASSWORD_HASHERS"][0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert (
        s["LOG_FORMAT"] == "json" and s["MIDDLEWARE"][0] == "clearinghouse.logs.RequestIdMiddleware"
    )


def test_passwords_are_hashed_with_argon2id_at_djangos_work_factor(settings):
    # The test settings use a fast hasher; the product's own list is in base.py.
    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS
    encoded = make_password("a-long-password-123")
    hasher = identify_hasher(encoded)
    assert isinstance(hasher, Argon2PasswordHasher) and encoded.startswith("argon2$argon2id$")
    params = hasher.decode(encoded)
    default = Argon2PasswordHasher()
    assert (params["time_cost"], params["memory_cost"], params["parallelism"]) == (
        default.time_cost,
        default.memory_cost,
        default.parallelism,
    )
    assert not hasher.must_update(encoded)
    assert hasher.verify("a-long-password-123", encoded)
    assert not hasher.verify("a-long-password-124", encoded)


def test_pages_carry_the_csp_and_debug_error_pages_stay_usable(db, client, settings):
    assert "script-src 'self'" in client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in client.get("/nope/").headers["Content-Security-Policy"]
    settings.DEBUG = True  # Django's technical 404 page is inline style and script
    assert "Content-Security-Policy" not in client.get("/nope/").headers
    assert "Content-Security-Policy" in client.get("/").headers
