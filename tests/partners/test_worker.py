"""A real Celery worker process takes tasks from Redis and writes to PostgreSQL."""

import pytest

from partners import services
from partners.models import Partner, PartnerEvent
from tests.support.processes import celery_worker, real_broker
from tests.support.waiting import wait_for, worker_progress

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_approval_email_is_sent_by_a_real_worker_after_commit(operator):
    partner, _ = services.partner_register(
        name="Worker Test Retail",
        kind=Partner.Kind.RETAILER,
        contact_email="c@w.example",
        admin_email="a@w.example",
        admin_password="a-long-password-123",
    )
    with real_broker() as app, celery_worker() as worker:
        app.control.purge()
        services.partner_approve(partner=partner, actor=operator)
        event = wait_for(
            lambda: (
                PartnerEvent.objects.unscoped("test setup")
                .filter(partner=partner, action="email.status_sent")
                .first()
            ),
            what="the worker to send the approval e-mail",
            progress=worker_progress(worker),
        )
    assert event.detail == {"status": "active"}


def test_a_task_enqueued_inside_a_rolled_back_transaction_never_runs(operator):
    from django.db import transaction

    partner, _ = services.partner_register(
        name="Rollback Retail",
        kind=Partner.Kind.RETAILER,
        contact_email="c@r.example",
        admin_email="a@r.example",
        admin_password="a-long-password-123",
    )
    with real_broker() as app, celery_worker() as worker:
        app.control.purge()
        with pytest.raises(RuntimeError), transaction.atomic():
            services.partner_approve(partner=partner, actor=operator)
            raise RuntimeError("roll back")
        # A later, committed change proves the worker is alive and has drained the queue.
        services.partner_suspend(partner=partner, actor=operator)
        wait_for(
            lambda: (
                PartnerEvent.objects.unscoped("test setup")
                .filter(partner=partner, action="email.status_sent")
                .exists()
            ),
            what="the suspension e-mail",
            progress=worker_progress(worker),
        )
    sent = PartnerEvent.objects.unscoped("test setup").filter(
        partner=partner, action="email.status_sent"
    )
    assert [e.detail["status"] for e in sent] == ["suspended"]
