"""GDPR Art. 19: withdrawals and erasures are notified to the partners that received the
customer's data, acknowledged (signed webhook answer or API), chased, and shown to the customer."""

import time
from datetime import timedelta

import pytest

from consent import notices, receipts, services
from consent.dashboard.views import SESSION_KEY, SESSION_UNTIL
from consent.ledger import ledger_verify
from consent.models import AccessLogEntry, ConsentGrant, Customer, LedgerEntry, RecipientNotice
from consent.services import Access
from partners import webhooks
from partners.models import Partner, WebhookDelivery, WebhookEvent
from tests.support.webhook_receiver import receiver_fixture  # noqa: F401

NOTICE_EVENTS = ["consent.revoked", "customer.erased"]


class World:
    def __init__(self, maker, shop, sparrow, customer):
        self.maker, self.shop, self.sparrow, self.customer = maker, shop, sparrow, customer


@pytest.fixture
def world(make_partner, make_customer):
    maker, _ = make_partner(name="Nordwind")
    shop, _ = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")
    sparrow, _ = make_partner(kind=Partner.Kind.RETAILER, name="Sparrow")
    customer = make_customer("alice@example.org", shop)
    return World(maker, shop, sparrow, customer)


def grant(world, partner, purpose="warranty"):
    return services.consent_grant(
        customer=world.customer, grantee=partner, purpose=purpose, source="customer"
    )


def read(world, partner, *purposes):
    """The partner read the customer's data, as the visibility decision records it."""
    services.access_record(
        partner=partner,
        accesses={world.customer.pk: Access(2, set(purposes), {"purchase"})},
        channel="api",
    )


def listen(partner, receiver):
    return webhooks.endpoint_create(partner=partner, url=receiver.url, event_types=NOTICE_EVENTS)


def revoke(capture, the_grant, **kwargs):
    with capture(execute=True):
        return services.consent_revoke(grant=the_grant, **kwargs)


def test_a_withdrawal_is_notified_to_the_grantee_that_read_the_data(
    world, receiver, django_capture_on_commit_callbacks
):
    the_grant = grant(world, world.maker)
    read(world, world.maker, "warranty")
    listen(world.maker, receiver)
    revoke(django_capture_on_commit_callbacks, the_grant)

    notice = RecipientNotice.objects.unscoped("test setup").get()
    the_grant.refresh_from_db()
    assert (notice.partner, notice.kind, notice.grant, notice.purpose) == (
        world.maker,
        "revocation",
        the_grant,
        "warranty",
    )
    assert notice.occurred_at == the_grant.revoked_at and notice.sent_at
    assert notice.acknowledged_at is None
    (request,) = receiver.wait_for(1)
    body = request.json()
    assert body["type"] == "consent.revoked" and request.headers["clearinghouse-event"] == (
        "consent.revoked"
    )
    assert body["ack_token"] == str(notice.pk)
    assert body["data"] == {
        "notice": str(notice.pk),
        "kind": "revocation",
        "customer": str(world.customer.pk),
        "purpose": "warranty",
        "revoked_at": the_grant.revoked_at.isoformat(),
        "acknowledge_url": f"http://127.0.0.1:8000/api/v1/notices/{notice.pk}/acknowledge",
        "reminder": 0,
    }
    assert "alice" not in request.body.decode().lower()  # never an identifier
    assert LedgerEntry.objects.filter(kind="notice.created", partner_ref=world.maker.pk).exists()
    assert ledger_verify()[1] == []


def test_partners_that_never_read_the_data_are_not_notified(
    world, receiver, django_capture_on_commit_callbacks
):
    to_sparrow = grant(world, world.sparrow)
    for_service = grant(world, world.maker, purpose="service")
    read(world, world.maker, "warranty")  # read, but not for the service purpose
    read(world, world.shop, "warranty")  # read, but holds no grant that is withdrawn
    listen(world.sparrow, receiver)
    listen(world.maker, receiver)
    revoke(django_capture_on_commit_callbacks, to_sparrow)
    revoke(django_capture_on_commit_callbacks, for_service)
    assert not RecipientNotice.objects.unscoped("test setup").exists()
    assert receiver.requests == [] and not WebhookEvent.objects.unscoped("test setup").exists()


def test_a_signed_2xx_answer_acknowledges_the_notice(
    world, receiver, django_capture_on_commit_callbacks
):
    the_grant = grant(world, world.maker)
    read(world, world.maker, "warranty")
    receiver.acknowledge_with(listen(world.maker, receiver).secret)
    revoke(django_capture_on_commit_callbacks, the_grant)

    notice = RecipientNotice.objects.unscoped("test setup").get()
    assert notice.acknowledged_via == "webhook" and notice.acknowledged_at
    assert notice.acknowledgement_delay < timedelta(minutes=1)
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    assert delivery.acknowledged_signature_ok is True and delivery.status == "succeeded"
    entry = LedgerEntry.objects.get(kind="notice.acknowledged")
    assert entry.payload["via"] == "webhook" and entry.payload["notice"] == str(notice.pk)


def test_an_answer_signed_with_another_secret_acknowledges_nothing(
    world, receiver, django_capture_on_commit_callbacks
):
    the_grant = grant(world, world.maker)
    read(world, world.maker, "warranty")
    listen(world.maker, receiver)
    receiver.acknowledge_with("whsec_someone_elses")
    revoke(django_capture_on_commit_callbacks, the_grant)
    assert RecipientNotice.objects.unscoped("test setup").get().acknowledged_at is None
    assert WebhookDelivery.objects.unscoped("test setup").get().acknowledged_signature_ok is False


def test_an_erasure_is_notified_to_every_partner_that_read_the_data(
    world, receiver, django_capture_on_commit_callbacks
):
    grant(world, world.maker)
    read(world, world.maker, "warranty")
    read(world, world.shop, "loyalty")
    listen(world.maker, receiver)
    with django_capture_on_commit_callbacks(execute=True):
        receipt = services.customer_erase(customer=world.customer)

    customer = Customer.objects.get(pk=world.customer.pk)
    assert customer.is_erased and not AccessLogEntry.objects.exists()
    erasures = (
        RecipientNotice.objects.unscoped("test setup")
        .filter(kind="erasure")
        .order_by("partner__name")
    )
    assert [n.partner for n in erasures] == [world.shop, world.maker]  # not Sparrow
    assert all(n.occurred_at == customer.erased_at for n in erasures)
    assert (
        not RecipientNotice.objects.unscoped("test setup").filter(kind="revocation").exists()
    )  # ended by erasure
    (request,) = receiver.wait_for(1)
    data = request.json()["data"]
    assert request.json()["type"] == "customer.erased"
    assert data["erased_at"] == customer.erased_at.isoformat() and data["purpose"] is None
    maker_notice = erasures.get(partner=world.maker)
    assert data["notice"] == str(maker_notice.pk) and maker_notice.sent_at
    # Brightmart has no endpoint for it: its contact and admins are e-mailed.
    assert erasures.get(partner=world.shop).sent_at is not None
    assert receipt.payload["erased"]["records_tombstoned"] == 0  # our receiver adds no count
    assert ledger_verify()[1] == []


def _erase(world, capture):
    with capture(execute=True):
        receipt = services.customer_erase(customer=world.customer)
    document = receipts.receipt_document(receipt)
    jwk = next(k for k in receipts.jwks()["keys"] if k["kid"] == document["kid"])
    assert receipts.verify(receipt.payload, receipt.signature, receipt.key_id)
    assert receipts.verify_with_jwk(document, jwk)  # as the customer checks it
    return receipt.payload


def test_an_erasure_nobody_read_names_no_recipient_in_its_signed_receipt(
    world, django_capture_on_commit_callbacks
):
    """Consents to two partners that never read anything: both consents end, nobody is told,
    and the signed receipt says exactly that."""
    grant(world, world.maker)
    grant(world, world.shop, purpose="loyalty")
    grant(world, world.shop, purpose="service")
    payload = _erase(world, django_capture_on_commit_callbacks)
    assert payload["recipients_told"] == []
    assert payload["consents_ended_with"] == ["Brightmart", "Nordwind"]
    assert payload["erased"]["consents_ended"] == 3
    assert (
        not RecipientNotice.objects.unscoped("test setup").exists()
        and not WebhookEvent.objects.unscoped("test setup").exists()
    )


def test_an_erasure_receipt_names_as_told_exactly_the_partners_that_read_the_data(
    world, django_capture_on_commit_callbacks
):
    """Nordwind read the data and is told; Brightmart's consent ends but it read nothing;
    Sparrow read the data without holding a consent now (it ended earlier) and is told too."""
    grant(world, world.maker)
    grant(world, world.shop, purpose="loyalty")
    read(world, world.maker, "warranty")
    read(world, world.sparrow, "service")
    payload = _erase(world, django_capture_on_commit_callbacks)
    notified = (
        RecipientNotice.objects.unscoped("test setup")
        .filter(kind="erasure")
        .select_related("partner")
    )
    assert payload["recipients_told"] == sorted(n.partner.name for n in notified)
    assert payload["recipients_told"] == ["Nordwind", "Sparrow"]
    assert payload["consents_ended_with"] == ["Brightmart", "Nordwind"]
    assert all(n.sent_at for n in notified)  # told after the commit


def test_a_withdrawal_the_grantee_relayed_itself_is_acknowledged_at_once(
    world, receiver, django_capture_on_commit_callbacks
):
    the_grant = grant(world, world.maker)
    read(world, world.maker, "warranty")
    listen(world.maker, receiver)
    revoke(django_capture_on_commit_callbacks, the_grant, ended_by=ConsentGrant.Ended.PARTNER)
    notice = RecipientNotice.objects.unscoped("test setup").get()
    assert notice.acknowledged_via == "api" and notice.acknowledged_at == notice.occurred_at
    assert receiver.requests == []
    entry = LedgerEntry.objects.get(kind="notice.acknowledged")
    assert entry.payload["via"] == "api" and entry.payload["delay_seconds"] == 0


def test_a_superseded_grant_is_not_a_withdrawal(world, django_capture_on_commit_callbacks):
    read(world, world.maker, "warranty")
    grant(world, world.maker)
    with django_capture_on_commit_callbacks(execute=True):
        services.consent_grant(
            customer=world.customer,
            grantee=world.maker,
            purpose="warranty",
            categories=["purchase"],
            source="customer",
        )
    assert ConsentGrant.objects.unscoped("test setup").filter(ended_by="superseded").count() == 1
    assert not RecipientNotice.objects.unscoped("test setup").exists()


def test_silent_recipients_are_chased_with_growing_pauses(
    world, receiver, django_capture_on_commit_callbacks
):
    the_grant = grant(world, world.maker)
    read(world, world.maker, "warranty")
    listen(world.maker, receiver)
    revoke(django_capture_on_commit_callbacks, the_grant)
    notice = RecipientNotice.objects.unscoped("test setup").get()
    start = notice.created_at

    def chase(after):
        with django_capture_on_commit_callbacks(execute=True):
            return notices.notices_chase(now=start + after)

    assert chase(timedelta(minutes=59)) == 0
    assert chase(timedelta(minutes=61)) == 1
    assert chase(timedelta(minutes=62)) == 0
    notice.refresh_from_db()
    assert notice.chase_count == 1 and notice.last_chased_at == start + timedelta(minutes=61)
    reminder = receiver.wait_for(2)[1].json()
    assert reminder["type"] == "consent.revoked" and reminder["data"]["reminder"] == 1
    assert reminder["data"]["notice"] == str(notice.pk) and reminder["ack_token"] == str(notice.pk)

    assert chase(timedelta(minutes=61 + 239)) == 0  # 4 h after the first reminder
    assert chase(timedelta(minutes=61 + 241)) == 1
    second = start + timedelta(minutes=61 + 241)
    assert chase(second - start + timedelta(hours=23)) == 0  # then daily
    assert chase(second - start + timedelta(hours=24, minutes=1)) == 1
    third = second + timedelta(hours=24, minutes=1)
    assert chase(third - start + timedelta(hours=24, minutes=1)) == 1  # daily is the cap
    notice.refresh_from_db()
    assert notice.chase_count == 4
    assert (
        WebhookEvent.objects.unscoped("test setup").filter(event_type="consent.revoked").count()
        == 5
    )
    assert len(receiver.requests) == 5

    notices.notice_acknowledge(notice=notice, via="api")
    assert chase(timedelta(days=30)) == 0


def test_a_suspended_recipient_is_not_chased(
    world, operator, receiver, django_capture_on_commit_callbacks
):
    from partners import services as partner_services

    the_grant = grant(world, world.maker)
    read(world, world.maker, "warranty")
    revoke(django_capture_on_commit_callbacks, the_grant)
    partner_services.partner_suspend(partner=world.maker, actor=operator)
    notice = RecipientNotice.objects.unscoped("test setup").get()
    assert notices.notices_chase(now=notice.created_at + timedelta(hours=2)) == 0


def test_the_chase_catches_up_a_withdrawal_whose_signal_was_lost(
    world, receiver, django_capture_on_commit_callbacks
):
    the_grant = grant(world, world.maker)
    read(world, world.maker, "warranty")
    listen(world.maker, receiver)
    the_grant = services.consent_revoke(grant=the_grant)  # its after-commit signal never runs
    assert not RecipientNotice.objects.unscoped("test setup").exists()
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_chase(now=the_grant.revoked_at + timedelta(minutes=1))
    assert not RecipientNotice.objects.unscoped(
        "test setup"
    ).exists()  # too recent: the signal may still come
    with django_capture_on_commit_callbacks(execute=True):
        notices.notices_chase(now=the_grant.revoked_at + timedelta(minutes=10))
    notice = RecipientNotice.objects.unscoped("test setup").get()
    assert notice.grant == the_grant and notice.sent_at
    assert receiver.wait_for(1)[0].json()["data"]["notice"] == str(notice.pk)


def sign_in(client, customer):
    session = client.session
    session[SESSION_KEY] = str(customer.pk)
    session[SESSION_UNTIL] = time.time() + 600
    session.save()


def test_the_dashboard_shows_who_confirmed_a_withdrawal_and_who_has_not(
    world, client, django_capture_on_commit_callbacks
):
    warranty = grant(world, world.maker)
    loyalty = grant(world, world.shop, purpose="loyalty")
    read(world, world.maker, "warranty")
    read(world, world.shop, "loyalty")
    revoke(django_capture_on_commit_callbacks, warranty)
    revoke(django_capture_on_commit_callbacks, loyalty)
    confirmed = RecipientNotice.objects.unscoped("test setup").get(partner=world.maker)
    notices.notice_acknowledge(
        notice=confirmed, via="webhook", at=confirmed.occurred_at + timedelta(minutes=3)
    )
    RecipientNotice.objects.unscoped("test setup").filter(partner=world.shop).update(chase_count=1)
    sign_in(client, world.customer)
    page = client.get("/me/consents/").content.decode()
    confirmed.refresh_from_db()
    assert "Who was told about your withdrawals" in page
    assert (
        f'Nordwind confirmed at <time datetime="{confirmed.acknowledged_at.isoformat()}">'
        f"{confirmed.acknowledged_at:%Y-%m-%d %H:%M}</time> (after 3 min)"
    ) in page
    assert "Brightmart has not confirmed yet (asked 2 times)" in page


def test_the_erased_page_lists_the_recipients_that_were_notified(world, client):
    grant(world, world.maker)
    read(world, world.maker, "warranty")
    sign_in(client, world.customer)
    response = client.post("/me/erase/", {"confirm": "ERASE"})
    page = response.content.decode()
    assert response.status_code == 200 and "You are erased" in page
    assert "Nordwind was notified and has not confirmed yet" in page
    assert "Brightmart" not in page.split("Who was told")[1].split("</section>")[0]


def test_describing_delays():
    describe = notices.describe_delay
    assert describe(timedelta(seconds=20)) == "under a minute"
    assert describe(timedelta(minutes=3, seconds=10)) == "3 min"
    assert describe(timedelta(hours=2)) == "2 h"
    assert describe(timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert describe(timedelta(days=3, hours=1)) == "3 days"


def test_a_recipient_without_a_webhook_is_emailed_and_confirms_in_the_portal(
    make_partner, make_customer, client, mailoutbox, django_capture_on_commit_callbacks
):
    maker, maker_admin = make_partner(name="Nordwind")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")
    world = World(maker, shop, None, make_customer("alice@example.org", shop))
    the_grant = grant(world, maker)
    read(world, maker, "warranty")
    revoke(django_capture_on_commit_callbacks, the_grant)
    notice = RecipientNotice.objects.unscoped("test setup").get()

    (mail,) = mailoutbox  # no endpoint: the maker's contact and admins are e-mailed
    assert mail.subject == "Consent withdrawn: please confirm"
    assert set(mail.to) == {maker.contact_email, maker_admin.email}
    assert str(notice.customer_id) in mail.body and "/portal/notices/" in mail.body
    assert "alice@example.org" not in mail.body
    notice.refresh_from_db()
    assert notice.sent_at is not None

    client.force_login(shop_admin)  # another partner's notice is not found
    assert client.post(f"/portal/notices/{notice.pk}/confirm/").status_code == 404
    client.force_login(maker_admin)
    page = client.get("/portal/notices/").content.decode()
    assert "To confirm (1)" in page and str(notice.customer_id)[:8] in page
    client.post(f"/portal/notices/{notice.pk}/confirm/")
    notice.refresh_from_db()
    assert notice.acknowledged_at and notice.acknowledged_via == "portal"
    assert "To confirm (0)" in client.get("/portal/notices/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # a confirmed notice is not chased
        assert notices.notices_chase(now=notice.created_at + timedelta(days=3)) == 0
    assert len(mailoutbox) == 1
