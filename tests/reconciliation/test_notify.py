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


def test_an_announcement_lost_after_the_runs_commit_is_made_by_the_sweep(
    world, receiver, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from clearinghouse.reconciliation.models import ReconciliationRun
    from clearinghouse.reconciliation.tasks import announce_sweep

    webhooks.endpoint_create(
        partner=world.shop,
        url=receiver.url,
        event_types=["discrepancy.opened"],
        actor=world.shop_admin,
    )
    put(world.shop, sale("S-1", occurred_at=world.days(60)))
    give_consents(world)
    finished = run(world)  # its after-commit announcement never runs (as if Redis were away)
    finished.refresh_from_db()
    assert finished.announced_at is None and len(finished.pending_opened) == 1
    assert announce_sweep() == 0  # not before a minute has passed
    ReconciliationRun.objects.unscoped("test setup").filter(pk=finished.pk).update(
        finished_at=finished.finished_at - timedelta(minutes=2)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_sweep() == 1
    (request,) = receiver.wait_for(1)
    assert request.json()["data"]["kind"] == "sale_without_registration"
    finished.refresh_from_db()
    assert finished.announced_at is not None and finished.pending_opened == []
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_sweep() == 0  # announced once


def test_a_run_nobody_listens_to_has_nothing_to_announce(world):
    put(world.shop, sale("S-1", occurred_at=world.days(60)))
    give_consents(world)
    finished = run(world)
    finished.refresh_from_db()
    assert finished.counts["opened"] == 1
    assert finished.announced_at is not None and finished.pending_opened == []
