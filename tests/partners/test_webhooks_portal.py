"""Portal pages for webhooks: admins register endpoints (secret shown once), send test events,
rotate, disable and redeliver; analysts and viewers read; another partner's objects are 404s."""

import re
import uuid

import pytest

from partners import webhooks
from partners.models import Partner, Role, WebhookDelivery, WebhookEndpoint
from tests.support.webhook_receiver import receiver_fixture  # noqa: F401


@pytest.fixture
def shop(make_partner):
    return make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")


def secret_on(page):
    match = re.search(r'data-testid="webhook-secret">([^<]+)<', page)
    return match.group(1) if match else None


def test_an_admin_registers_an_endpoint_and_sees_the_secret_once(shop, client, receiver):
    _, admin = shop
    client.force_login(admin)
    assert b'href="/portal/webhooks/"' in client.get("/portal/").content  # in the navigation
    form = client.get("/portal/webhooks/new/")
    assert form.status_code == 200 and b"discrepancy.opened" in form.content
    response = client.post(
        "/portal/webhooks/new/",
        {"url": receiver.url, "description": "ERP", "event_types": ["record.shared"]},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.unscoped("test setup").get()
    assert secret_on(response.content.decode()) == endpoint.secret
    for url in ["/portal/webhooks/", f"/portal/webhooks/{endpoint.pk}/"]:
        page = client.get(url).content.decode()
        assert receiver.url in page and endpoint.secret not in page


@pytest.mark.parametrize(
    "data,field",
    [
        ({"url": "https://u:p@hooks.example/h", "event_types": ["record.shared"]}, "url"),
        ({"url": "https://hooks.example/h"}, "event_types"),
        ({"url": "nonsense", "event_types": ["record.shared"]}, "url"),
    ],
)
def test_a_bad_endpoint_is_a_form_error(shop, client, data, field):
    _, admin = shop
    client.force_login(admin)
    response = client.post("/portal/webhooks/new/", data)
    assert response.status_code == 200 and field in response.context["form"].errors
    assert not WebhookEndpoint.objects.unscoped("test setup").exists()


def test_plain_http_is_a_form_error_outside_development(shop, client, settings):
    _, admin = shop
    settings.WEBHOOKS_ALLOW_HTTP = False
    client.force_login(admin)
    response = client.post(
        "/portal/webhooks/new/", {"url": "http://hooks.example/h", "event_types": ["record.shared"]}
    )
    assert "HTTPS" in str(response.context["form"].errors["url"])


def test_test_event_rotate_disable_and_enable(
    shop, client, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    issued = webhooks.endpoint_create(
        partner=partner, url=receiver.url, event_types=["record.shared"], actor=admin
    )
    endpoint = issued.endpoint
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/portal/webhooks/{endpoint.pk}/test/", follow=True)
    assert receiver.wait_for(1)[0].json()["type"] == "ping"
    page = response.content.decode()
    assert "A test event is on its way" in page
    detail = client.get(f"/portal/webhooks/{endpoint.pk}/").content.decode()
    assert "HTTP 200" in detail and "Delivered" in detail

    rotated = client.post(f"/portal/webhooks/{endpoint.pk}/rotate/")
    new_secret = secret_on(rotated.content.decode())
    assert new_secret and new_secret != issued.secret and rotated["Cache-Control"] == "no-store"
    endpoint.refresh_from_db()
    assert endpoint.secret == new_secret

    client.post(f"/portal/webhooks/{endpoint.pk}/disable/")
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert b"Enable" in client.get(f"/portal/webhooks/{endpoint.pk}/").content
    client.post(f"/portal/webhooks/{endpoint.pk}/enable/")
    endpoint.refresh_from_db()
    assert endpoint.active


def test_redelivery_from_the_delivery_page(
    shop, client, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    webhooks.endpoint_create(
        partner=partner, url=receiver.url, event_types=["record.shared"], actor=admin
    )
    receiver.fail_first(1, status=500)
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_emit(partner=partner, event_type="record.shared", subject={"ref": "R-7"})
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    client.force_login(admin)
    page = client.get(f"/portal/webhooks/deliveries/{delivery.pk}/").content.decode()
    assert "HTTP 500" in page and "Failed, will retry" in page and "R-7" in page
    listing = client.get("/portal/webhooks/").content.decode()
    assert "HTTP 500" in listing and "record.shared" in listing
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/portal/webhooks/deliveries/{delivery.pk}/redeliver/", follow=True)
    assert "on its way again" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 2
    assert "HTTP 200" in client.get(f"/portal/webhooks/deliveries/{delivery.pk}/").content.decode()


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_analysts_and_viewers_read_but_do_not_act(
    shop, add_staff, client, role, receiver, django_capture_on_commit_callbacks
):
    partner, admin = shop
    endpoint = webhooks.endpoint_create(
        partner=partner, url=receiver.url, event_types=["record.shared"], actor=admin
    ).endpoint
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_emit(partner=partner, event_type="record.shared", subject={"ref": "R"})
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    client.force_login(add_staff(partner, role, admin))
    for url in [
        "/portal/webhooks/",
        f"/portal/webhooks/{endpoint.pk}/",
        f"/portal/webhooks/deliveries/{delivery.pk}/",
    ]:
        page = client.get(url)
        assert page.status_code == 200 and b"Redeliver" not in page.content
    assert client.get("/portal/webhooks/new/").status_code == 403
    for action in ["test", "rotate", "disable"]:
        assert client.post(f"/portal/webhooks/{endpoint.pk}/{action}/").status_code == 403
    assert client.post(f"/portal/webhooks/deliveries/{delivery.pk}/redeliver/").status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.active and len(receiver.requests) == 1


def test_another_partners_endpoints_and_deliveries_are_404(
    shop, make_partner, client, receiver, django_capture_on_commit_callbacks
):
    _, admin = shop
    stranger, stranger_admin = make_partner(name="Stranger")
    endpoint = webhooks.endpoint_create(
        partner=stranger, url=receiver.url, event_types=["record.shared"], actor=stranger_admin
    ).endpoint
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_emit(partner=stranger, event_type="record.shared", subject={"ref": "R"})
    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    client.force_login(admin)
    for pk in [endpoint.pk, uuid.uuid4()]:
        assert client.get(f"/portal/webhooks/{pk}/").status_code == 404
        for action in ["test", "rotate", "disable", "enable"]:
            assert client.post(f"/portal/webhooks/{pk}/{action}/").status_code == 404
    for pk in [delivery.pk, uuid.uuid4()]:
        assert client.get(f"/portal/webhooks/deliveries/{pk}/").status_code == 404
        assert client.post(f"/portal/webhooks/deliveries/{pk}/redeliver/").status_code == 404
    listing = client.get("/portal/webhooks/").content.decode()
    assert receiver.url not in listing
    endpoint.refresh_from_db()
    assert endpoint.active and len(receiver.requests) == 1


def test_pending_partners_cannot_use_webhooks(make_partner, client):
    _, admin = make_partner(status=Partner.Status.PENDING)
    client.force_login(admin)
    assert client.get("/portal/webhooks/").status_code == 403
    assert client.get("/portal/webhooks/new/").status_code == 403
