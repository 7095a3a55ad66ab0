"""``record.shared``: after an ingest commits, a listening counterpart hears about the new
records it may see, projected for it, delivered to a real HTTP receiver."""

from consent import identity
from consent import services as consent_services
from consent.models import AccessLogEntry
from partners import webhooks
from partners.models import WebhookEvent
from tests.support.webhook_receiver import receiver_fixture  # noqa: F401

from .conftest import consent, registration, sale


def known(partner, email):
    """The customer, known to ``partner`` before any record names them."""
    consent_services.customer_resolve(
        identifier=identity.parse_identifier(kind="email", value=email), partner=partner
    )


def ingest(partner, capture, *rows):
    from clearinghouse.records.services import records_ingest

    with capture(execute=True):  # the after-commit announcement, and its deliveries
        return records_ingest(partner=partner, rows=list(rows), max_rows=100)


def test_the_maker_hears_of_the_sales_it_may_see(
    pair, receiver, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    issued = webhooks.endpoint_create(
        partner=pair.maker, url=receiver.url, event_types=["record.shared"], actor=pair.maker_admin
    )
    known(pair.shop, "alice@example.org")
    consent(pair.maker, email="alice@example.org")  # Bob gave the maker no consent
    ingest(
        pair.shop,
        capture,
        sale("S-1", email="alice@example.org", payload={"price_cents": 100, "currency": "EUR"}),
        sale("S-2", email="bob@example.org", serial="SN-2"),
    )
    (request,) = receiver.wait_for(1)
    assert webhooks.verify_signature(
        secret=issued.secret, header=request.headers["clearinghouse-signature"], body=request.body
    )
    body = request.json()
    assert body["type"] == "record.shared" and body["data"]["recorded_by"] == pair.shop.slug
    (record,) = body["data"]["records"]  # Alice's sale only
    assert record["kind"] == "sale" and record["product"]["serial"] == "SN-1"
    assert record["payload"] == {} and "external_id" not in record  # not a shared field
    assert AccessLogEntry.objects.filter(partner=pair.maker, channel="webhook").exists()

    # The maker's own records are not announced to itself; the shop does not listen.
    ingest(pair.maker, capture, registration("W-1", email="alice@example.org"))
    assert WebhookEvent.objects.unscoped("test setup").count() == 1


def test_an_event_is_not_sent_once_its_records_are_no_longer_shared(pair, receiver):
    """The event names the record; the consent is withdrawn before the delivery's attempt (a
    retry, a redelivery): the data is built at the attempt, nothing of it is shared any more,
    and the attempt is not made."""
    from clearinghouse.records.announce import records_announce
    from clearinghouse.records.services import records_ingest
    from consent.models import ConsentGrant
    from partners.models import WebhookDelivery

    webhooks.endpoint_create(
        partner=pair.maker, url=receiver.url, event_types=["record.shared"], actor=pair.maker_admin
    )
    known(pair.shop, "alice@example.org")
    consent(pair.maker, email="alice@example.org")
    (result,) = records_ingest(partner=pair.shop, rows=[sale("S-1")], max_rows=10)
    assert records_announce(submitter=pair.shop, refs=[result.ref]) == 1
    records_announce(submitter=pair.shop, refs=[result.ref])  # a replayed task
    event = WebhookEvent.objects.unscoped("test setup").get()
    assert event.subject["records"] == [str(result.ref)]  # what it is about, not the data
    delivery = WebhookDelivery.objects.unscoped("test setup").get()

    consent_services.consent_revoke(
        grant=ConsentGrant.objects.unscoped("test setup").get(grantee=pair.maker)
    )
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) == "gave_up"
    delivery.refresh_from_db()
    assert delivery.status == "gave_up" and "no longer shared" in delivery.last_error
    assert receiver.requests == []


def test_a_consent_given_announces_what_it_alone_lets_the_grantee_see(
    pair, receiver, django_capture_on_commit_callbacks
):
    """Alice's sale arrived while she had given the maker no consent: nothing was announced.
    Her consent makes it visible, and the maker hears of it then; Bob's sale stays unheard of."""
    capture = django_capture_on_commit_callbacks
    webhooks.endpoint_create(
        partner=pair.maker, url=receiver.url, event_types=["record.shared"], actor=pair.maker_admin
    )
    known(pair.shop, "alice@example.org")
    ingest(
        pair.shop,
        capture,
        sale("S-1", email="alice@example.org"),
        sale("S-2", email="bob@example.org", serial="SN-2"),
    )
    ingest(pair.maker, capture, registration("W-1", email="alice@example.org"))
    assert WebhookEvent.objects.unscoped("test setup").count() == 0

    with capture(execute=True):
        grant = consent(pair.maker, email="alice@example.org")
    (request,) = receiver.wait_for(1)
    data = request.json()["data"]
    assert data["recorded_by"] == pair.shop.slug and data["reason"] == "consent_given"
    (record,) = data["records"]  # Alice's sale; not Bob's, not the maker's own registration
    assert record["kind"] == "sale" and record["product"]["serial"] == "SN-1"
    assert WebhookEvent.objects.unscoped("test setup").get().subject["records"] == [record["ref"]]

    # A replayed task stores nothing twice.
    from clearinghouse.records.announce import records_announce_granted

    assert records_announce_granted(grant_id=grant.pk) == 1
    assert WebhookEvent.objects.unscoped("test setup").count() == 1


def test_a_consent_that_adds_nothing_announces_nothing(
    pair, receiver, django_capture_on_commit_callbacks
):
    """A consent that replaces one with the same categories (a new expiry), and a consent for
    a purpose no clause shares under, let the maker see nothing new: no event. A consent
    withdrawn before the worker reads it announces nothing either."""
    from datetime import timedelta

    from django.utils import timezone

    from clearinghouse.records.announce import records_announce_granted
    from consent.selectors import customer_by_identifier

    capture = django_capture_on_commit_callbacks
    webhooks.endpoint_create(
        partner=pair.maker, url=receiver.url, event_types=["record.shared"], actor=pair.maker_admin
    )
    known(pair.shop, "alice@example.org")
    with capture(execute=True):
        first = consent(pair.maker, email="alice@example.org")
    ingest(pair.shop, capture, sale("S-1", email="alice@example.org"))
    assert (
        WebhookEvent.objects.unscoped("test setup").filter(subject__reason="recorded").count() == 1
    )

    alice = customer_by_identifier(
        identity.parse_identifier(kind="email", value="alice@example.org")
    )
    with capture(execute=True):
        renewed = consent_services.consent_grant(
            customer=alice,
            grantee=pair.maker,
            purpose="warranty",
            categories=first.categories,
            source="customer",
            expires_at=timezone.now() + timedelta(days=365),
        )
        consent(pair.maker, email="alice@example.org", purpose="loyalty")
    assert WebhookEvent.objects.unscoped("test setup").count() == 1

    consent_services.consent_revoke(grant=renewed)
    assert records_announce_granted(grant_id=renewed.pk) == 0
    assert WebhookEvent.objects.unscoped("test setup").count() == 1
