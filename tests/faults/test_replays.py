"""Clock skew and replays: a webhook signature outside its five-minute window is refused — by the
project's helper and by the verification snippet the README gives partners — and a sign-in link
is refused once used, once expired, or when its signed time is older than its lifetime."""

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import signing
from django.utils import timezone

from consent import services as consent_services
from consent.models import MagicLink
from partners import webhooks
from partners.models import Partner
from tests.consent.conftest import make_customer  # noqa: F401 (fixture)

README = Path(__file__).resolve().parent.parent.parent / "README.md"
TEN_MINUTES = 600


def _readme_verify():
    """The ``verify`` function of the README's webhook section, run as a partner would run it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (source,) = [b for b in blocks if "def verify(secret" in b]
    namespace = {}
    exec(compile(source, "README.md", "exec"), namespace)
    return namespace["verify"]


@pytest.mark.parametrize("skew", [-TEN_MINUTES, TEN_MINUTES, -301, 301])
def test_a_signature_outside_its_window_is_refused_by_the_helper_and_the_readme(skew):
    body = b'{"id":"e1","type":"ping","data":{}}'
    secret = "whsec_replay"
    readme_verify = _readme_verify()
    fresh = webhooks.signature_header(secrets=[secret], body=body, timestamp=time.time())
    assert readme_verify(secret, fresh, body)
    assert webhooks.verify_signature(secret=secret, header=fresh, body=body)

    # Signed ten minutes ago (a captured delivery replayed) or ten minutes ahead (a skewed or
    # forged clock): both refused, although the signature itself is valid.
    skewed = webhooks.signature_header(secrets=[secret], body=body, timestamp=time.time() + skew)
    assert not readme_verify(secret, skewed, body)
    assert not webhooks.verify_signature(secret=secret, header=skewed, body=body)
    # Moving the time forward on an old signature breaks it.
    stamp = re.search(r"t=(\d+)", skewed).group(1)
    moved = skewed.replace(f"t={stamp}", f"t={int(time.time())}")
    assert not readme_verify(secret, moved, body)


@pytest.fixture
def alice(db, make_partner, make_customer):  # noqa: F811
    shop, _ = make_partner(kind=Partner.Kind.RETAILER)
    return make_customer("alice@example.org", shop)


def _link(alice):
    link = consent_services.magic_link_request(email="alice@example.org", ip="10.0.0.1")
    assert link is not None and link.customer_id == alice.pk
    return link


def _signs_in(client, token):
    response = client.post(f"/me/link/{token}/")
    return response.status_code == 302 and client.get("/me/overview/").status_code == 200


def test_a_used_sign_in_link_is_refused_when_replayed(client, alice):
    token = consent_services.magic_link_token(_link(alice))
    assert _signs_in(client, token)
    client.logout()
    client.cookies.clear()
    replay = client.post(f"/me/link/{token}/")
    assert replay.status_code == 400
    assert client.get("/me/overview/").status_code == 302  # to the sign-in page


def test_an_expired_sign_in_link_is_refused(client, alice):
    link = _link(alice)
    token = consent_services.magic_link_token(link)
    MagicLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.post(f"/me/link/{token}/").status_code == 400
    assert MagicLink.objects.get(pk=link.pk).used_at is None


def test_a_link_signed_longer_ago_than_its_lifetime_is_refused(
    client, alice, settings, monkeypatch
):
    """Even if the stored expiry were off (a skewed clock on the server that wrote it), the signed
    time inside the token bounds its life."""
    link = _link(alice)
    MagicLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() + timedelta(days=1))
    signed_at = time.time() - (settings.MAGIC_LINK_TTL_MINUTES * 60 + 60)

    class Clock:
        @staticmethod
        def time():
            return signed_at

    with monkeypatch.context() as patched:
        patched.setattr(signing, "time", Clock)
        token = consent_services.magic_link_token(link)
    assert client.post(f"/me/link/{token}/").status_code == 400
    assert MagicLink.objects.get(pk=link.pk).used_at is None
