"""The dashboard's sign-in: single-use links by e-mail. Asking for one behaves the same whether
or not we hold data for the address, and is limited per address and per client address."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from .. import identity
from ..models import Customer, Identifier, MagicLink
from ..selectors import identifier_match
from .encryption import identifiers_encrypt

MAGIC_LINK_SALT = "consent.magic-link"


class RateLimited(Exception):
    """Too many sign-in links were asked for, from this client address or for this address."""


def _count(key: str, limit: int) -> bool:
    """Count one more attempt in a one-hour window; True while within the limit."""
    cache.add(key, 0, timeout=3600)
    try:
        return cache.incr(key) <= limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        return True


@transaction.atomic
def magic_link_request(*, email: str, ip: str) -> MagicLink | None:
    """Send a sign-in link if we hold data for this address — and behave the same either way.

    Raises ``ValidationError`` for a malformed address and ``RateLimited`` past the limits per
    address and per IP (counted for unknown addresses too, so the limit reveals nothing)."""
    parsed = identity.parse_identifier(kind=identity.EMAIL, value=email)
    if not _count(f"magic:ip:{ip}", settings.MAGIC_LINKS_PER_IP_PER_HOUR) or not _count(
        f"magic:addr:{parsed.sha256}", settings.MAGIC_LINKS_PER_ADDRESS_PER_HOUR
    ):
        raise RateLimited()
    ident = (
        Identifier.objects.select_related("customer")
        .filter(identifier_match(parsed), customer__erased_at__isnull=True)
        .first()
    )
    if ident is None:
        return None
    if ident.ciphertext is None:
        identifiers_encrypt(owners={parsed: ident.customer_id})
    link = MagicLink.objects.create(
        customer=ident.customer,
        identifier=ident,
        expires_at=timezone.now() + timedelta(minutes=settings.MAGIC_LINK_TTL_MINUTES),
    )
    from ..tasks import send_magic_link

    transaction.on_commit(lambda: send_magic_link.delay(str(link.pk)), robust=True)
    return link


def magic_link_token(link: MagicLink) -> str:
    """The signed token of a sign-in link, as it goes into the URL e-mailed to the customer."""
    return signing.dumps(str(link.pk), salt=MAGIC_LINK_SALT)


@transaction.atomic
def magic_link_consume(*, token: str) -> Customer | None:
    """The customer a valid, unused, unexpired link signs in, or None. Single use."""
    try:
        link_id = signing.loads(
            token, salt=MAGIC_LINK_SALT, max_age=settings.MAGIC_LINK_TTL_MINUTES * 60
        )
        link_id = uuid.UUID(str(link_id))
    except (signing.BadSignature, ValueError):
        return None
    link = (
        MagicLink.objects.select_for_update().select_related("customer").filter(pk=link_id).first()
    )
    now = timezone.now()
    if link is None or link.used_at or link.expires_at <= now or link.customer.is_erased:
        return None
    link.used_at = now
    link.save(update_fields=["used_at"])
    return link.customer
