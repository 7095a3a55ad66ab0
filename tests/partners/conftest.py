"""Fixtures of the partner layer's tests."""

import pytest


@pytest.fixture(autouse=True)
def record_shared_is_its_subject(request, monkeypatch):
    """The webhook transport's tests emit ``record.shared`` about no real record: in them an
    event's data is its subject. (The core's builder, which reads records through the
    visibility decision, is tested with the core.)"""
    if not request.module.__name__.rsplit(".", 1)[-1].startswith("test_webhooks"):
        return
    from partners.webhooks import payloads

    def echo(*, partner, subject, channel, request_id=""):
        return subject

    monkeypatch.setitem(payloads._BUILDERS, "record.shared", echo)
