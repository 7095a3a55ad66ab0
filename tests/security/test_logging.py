"""Structured logs with a request id, carried into Celery tasks; and no secret in any log line,
whatever the code that logs."""

import contextlib
import io
import json
import logging

import pytest
from django.test import Client

from clearinghouse.logs import JsonFormatter, accept_request_id
from consent import identity, services
from partners.models import Partner
from tests.support.processes import celery_worker, real_broker
from tests.support.waiting import wait_for, worker_progress

API_KEY = "chk_abcd1234_S3cr3tK3yMaterialThatMustNeverBeLogged"
PASSWORD = "Pa55-word-that-must-not-leak"
LINK_TOKEN = "IjM0NTY3OCI:1vSecretLinkTokenPart:abcdefghijklmnopqrstuvwxyz0123456789ABCD"


@contextlib.contextmanager
def captured_logs(fmt):
    """What the configured console handler writes (its filters included), as text."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    root = logging.getLogger()
    stream, level = io.StringIO(), root.level
    previous_stream, previous_formatter = handler.setStream(stream), handler.formatter
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        handler.setStream(previous_stream)
        handler.setFormatter(previous_formatter)
        root.setLevel(level)


def test_a_safe_x_request_id_is_kept_and_anything_else_replaced(db, client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.01").headers["X-Request-ID"] == (
        "lb-7f3a.01"
    )
    for hostile in ["<script>alert(1)</script>", "a" * 65, "id with spaces", "x\r\nSet-Cookie: a"]:
        answered = client.get("/healthz", HTTP_X_REQUEST_ID=hostile).headers["X-Request-ID"]
        assert answered != hostile and len(answered) == 32 and answered.isalnum()
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32
    assert accept_request_id(None) != accept_request_id(None)


def test_every_record_of_a_request_is_json_with_its_request_id(db, client):
    with captured_logs("json") as out:
        client.get("/no/such/page/", HTTP_X_REQUEST_ID="req-404-check")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    not_found = [r for r in records if r["logger"] == "django.request"]
    assert not_found and all(r["request_id"] == "req-404-check" for r in not_found), records
    assert not_found[0]["status"] == 404 and not_found[0]["path"] == "/no/such/page/"
    assert not_found[0]["level"] == "WARNING" and not_found[0]["time"].endswith("+00:00")


@pytest.mark.urls("tests.security.urls_failing")
@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_secrets_never_reach_the_logs(fmt, make_partner, settings):
    settings.DEBUG = False
    _, admin = make_partner()
    client = Client(raise_request_exception=False)
    with captured_logs(fmt) as out:
        # A failed sign-in, a bad API key, one-time link tokens in paths.
        client.post("/accounts/login/", {"username": admin.email, "password": PASSWORD})
        client.get("/api/v1/partners/me", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
        client.get(f"/me/link/{LINK_TOKEN}/")
        client.post(f"/me/link/{LINK_TOKEN}/")
        client.get(f"/portal/join/{LINK_TOKEN}/")
        # A view that logs the request's headers and form, then fails with them: a 500.
        response = client.post(
            "/careless/",
            {"password": PASSWORD, "api_key": API_KEY, "token": LINK_TOKEN},
            HTTP_AUTHORIZATION=f"Bearer {API_KEY}",
            HTTP_X_REQUEST_ID="req-careless",
        )
    assert response.status_code == 500
    text = out.getvalue()
    assert "Internal Server Error: /careless/" in text and "req-careless" in text
    assert "RuntimeError" in text and "[redacted]" in text
    for secret in [API_KEY, PASSWORD, LINK_TOKEN, "S3cr3tK3y", "1vSecretLinkTokenPart"]:
        assert secret not in text, (secret, text)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_a_request_logs_with_that_requests_id(make_partner, tmp_path, client):
    shop, _ = make_partner(kind=Partner.Kind.RETAILER)
    services.customer_resolve(
        identifier=identity.parse_identifier(kind="email", value="alice@example.org"),
        partner=shop,
        categories=["purchase"],
    )
    log = tmp_path / "worker.log"
    with (
        real_broker() as app,
        celery_worker(log_path=log, LOG_FORMAT="json", LOG_LEVEL="INFO") as worker,
    ):
        app.control.purge()
        response = client.post(
            "/me/", {"email": "alice@example.org"}, HTTP_X_REQUEST_ID="req-from-the-browser"
        )
        assert response.status_code == 302

        def task_records():
            records = []
            for line in log.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
            return [
                r
                for r in records
                if r.get("request_id") == "req-from-the-browser"
                and "consent.send_magic_link" in r["message"]
            ]

        found = wait_for(
            task_records,
            what="the worker to log the task with the request id",
            progress=worker_progress(worker),
        )
    assert any("succeeded" in r["message"] for r in found), found
    assert "/me/link/" not in log.read_text() or "[redacted]" in log.read_text()
