"""Discrepancy webhooks from runs: a finding a run opens, and one it resolves by itself, reach
the parties that listen, each with its own projection, at a real HTTP receiver."""

from partners import webhooks
from tests.records.conftest import registration, sale
from tests.support.webhook_receiver import receiver_fixture  # noqa: F401

from .conftest import give_consents, put, run


def test_a_run_announces_what_it_opens_and_what_it_resolves(
    world, receiver, django_capture_on_commit_callbacks
):
    webhooks.endpoint_create(
        partner=world.maker,
        url=receiver.url,
        event_types=["discrepancy.opened", "discrepancy.updated"],
        actor=world.maker_admin,
    )
    put(world.shop, sale("S-1", occurred_at=world.days(60)))
    give_consents(world)
    with django_capture_on_commit_callbacks(execute=True):
        run(world)
    (opened,) = receiver.wait_for(1)
    body = opened.json()
    assert body["type"] == "discrepancy.opened"
    assert body["data"]["kind"] == "sale_without_registration"
    assert body["data"]["status"] == "open" and body["data"]["product"]["serial"] == "SN-1"
    assert [e["role"] for e in body["data"]["evidence"]] == ["sale"]

    # The unit is registered after all: the next run resolves the finding and says so.
    put(
        world.maker,
        registration("W-1", occurred_at=world.days(59), payload={"warranty_months": 24}),
    )
    with django_capture_on_commit_callbacks(execute=True):
        run(world)
    updated = receiver.wait_for(2)[1].json()
    assert updated["type"] == "discrepancy.updated"
    assert updated["data"]["id"] == body["data"]["id"] and updated["data"]["status"] == "resolved"
