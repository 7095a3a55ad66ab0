"""Password guessing and mail bombing are limited: partner staff and operator sign-in per account
and per client address, password-reset e-mails, and the dashboard's sign-in links."""

import pytest
from django.core import mail

PASSWORD = "a-long-password-123"
LOCKED = b"Too many failed sign-in attempts"


def sign_in(client, email, password, ip):
    return client.post(
        "/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR=ip
    )


@pytest.fixture
def limits(settings):
    settings.SIGN_IN_FAILURES_PER_ACCOUNT = 3
    settings.SIGN_IN_FAILURES_PER_IP = 5
    settings.PASSWORD_RESETS_PER_ADDRESS_PER_HOUR = 2
    settings.PASSWORD_RESETS_PER_IP_PER_HOUR = 3
    return settings


def test_failed_sign_ins_lock_the_account_even_for_the_right_password(limits, make_partner, client):
    _, admin = make_partner()
    _, other = make_partner()
    for _ in range(3):
        response = sign_in(client, admin.email, "wrong-guess", "10.0.0.1")
        assert response.status_code == 200 and b"correct email and password" in response.content
    refused = sign_in(client, admin.email, PASSWORD, "10.0.0.2")
    assert refused.status_code == 429 and LOCKED in refused.content
    assert "_auth_user_id" not in client.session
    # Another account, from the same addresses, is not affected.
    assert sign_in(client, other.email, PASSWORD, "10.0.0.2").status_code == 302


def test_failed_sign_ins_from_one_address_lock_that_address(limits, make_partner, client):
    _, admin = make_partner()
    for n in range(5):
        sign_in(client, f"guess{n}@example.org", "wrong-guess", "10.0.0.9")
    assert sign_in(client, admin.email, PASSWORD, "10.0.0.9").status_code == 429
    assert sign_in(client, admin.email, PASSWORD, "10.0.0.10").status_code == 302


def test_unknown_accounts_are_counted_alike_so_the_limit_reveals_nothing(limits, make_partner):
    from django.test import Client

    _, admin = make_partner()
    answers = []
    for n, email in enumerate([admin.email, "nobody@example.org"]):
        client = Client()
        for _ in range(3):
            sign_in(client, email, "wrong-guess", f"10.0.1.{n}")
        response = sign_in(client, email, "wrong-guess", f"10.0.2.{n}")
        answers.append((response.status_code, LOCKED in response.content))
    assert answers == [(429, True), (429, True)]


def test_a_successful_sign_in_clears_the_accounts_failures(limits, make_partner, client):
    _, admin = make_partner()
    for _ in range(2):
        sign_in(client, admin.email, "wrong-guess", "10.0.0.1")
    assert sign_in(client, admin.email, PASSWORD, "10.0.0.1").status_code == 302
    client.logout()
    for _ in range(2):
        sign_in(client, admin.email, "wrong-guess", "10.0.0.1")
    assert sign_in(client, admin.email, PASSWORD, "10.0.0.1").status_code == 302


def test_the_operator_admin_sign_in_is_limited_too(limits, operator, client):
    for _ in range(3):
        client.post(
            "/admin/login/",
            {"username": operator.email, "password": "wrong-guess"},
            REMOTE_ADDR="10.0.0.1",
        )
    refused = client.post(
        "/admin/login/",
        {"username": operator.email, "password": "operator-pass-123"},
        REMOTE_ADDR="10.0.0.1",
    )
    assert LOCKED in refused.content and "_auth_user_id" not in client.session


def test_password_reset_emails_are_limited_per_address_and_per_ip(limits, make_partner, client):
    _, admin = make_partner()

    def ask(email, ip):
        return client.post("/accounts/password_reset/", {"email": email}, REMOTE_ADDR=ip)

    assert ask(admin.email, "10.0.0.1").status_code == 302
    assert ask(admin.email, "10.0.0.2").status_code == 302
    refused = ask(admin.email, "10.0.0.3")
    assert refused.status_code == 429 and b"Too many password-reset" in refused.content
    assert len(mail.outbox) == 2
    for n in range(3):
        ask(f"someone{n}@example.org", "10.0.0.7")
    assert ask("someone-else@example.org", "10.0.0.7").status_code == 429


def test_dashboard_sign_in_links_answer_429_past_their_limits(world_customer, client, settings):
    settings.MAGIC_LINKS_PER_ADDRESS_PER_HOUR = 2
    settings.MAGIC_LINKS_PER_IP_PER_HOUR = 100
    for n in range(2):
        response = client.post("/me/", {"email": "alice@example.org"}, REMOTE_ADDR=f"10.0.3.{n}")
        assert response.status_code == 302
    refused = client.post("/me/", {"email": "alice@example.org"}, REMOTE_ADDR="10.0.3.9")
    assert refused.status_code == 429 and b"Too many sign-in links" in refused.content
    settings.MAGIC_LINKS_PER_ADDRESS_PER_HOUR = 100
    settings.MAGIC_LINKS_PER_IP_PER_HOUR = 2
    for n in range(2):
        client.post("/me/", {"email": f"x{n}@example.org"}, REMOTE_ADDR="10.0.4.1")
    assert (
        client.post("/me/", {"email": "y@example.org"}, REMOTE_ADDR="10.0.4.1").status_code == 429
    )


@pytest.fixture
def world_customer(make_partner):
    from consent import identity, services
    from partners.models import Partner

    shop, _ = make_partner(kind=Partner.Kind.RETAILER)
    return services.customer_resolve(
        identifier=identity.parse_identifier(kind="email", value="alice@example.org"),
        partner=shop,
        categories=["purchase"],
    )


def via_proxy(client, email, password, forwarded_for):
    """A sign-in that reached us through a reverse proxy at 10.9.9.9."""
    return client.post(
        "/accounts/login/",
        {"username": email, "password": password},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def test_behind_a_trusted_proxy_the_limits_count_clients_not_the_proxy(
    limits, make_partner, client
):
    limits.TRUSTED_PROXY_COUNT = 1
    _, admin = make_partner()
    for n in range(5):
        # The client made up the left entries; the proxy appended the real address.
        via_proxy(client, f"guess{n}@example.org", "wrong-guess", f"6.6.6.{n}, 203.0.113.7")
    assert via_proxy(client, admin.email, PASSWORD, "203.0.113.7").status_code == 429
    # Another client through the same proxy is not locked out with the guesser.
    assert via_proxy(client, admin.email, PASSWORD, "198.51.100.4").status_code == 302


def test_without_a_trusted_proxy_the_forwarded_header_is_ignored(limits, make_partner, client):
    _, admin = make_partner()
    for n in range(5):
        via_proxy(client, f"guess{n}@example.org", "wrong-guess", f"203.0.113.{n}")
    # Rotating the header did not spread the guesses over addresses: 10.9.9.9 is locked.
    assert via_proxy(client, admin.email, PASSWORD, "198.51.100.4").status_code == 429
