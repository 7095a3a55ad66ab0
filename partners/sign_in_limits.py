"""Limits on password guessing against partner staff and operator accounts, and on password-reset
e-mails, counted in Redis (the cache) per account and per client address.

Failed sign-ins are counted for any address typed in, known or not, so that the limit reveals
nothing about which accounts exist. Past the limit every attempt is refused, a correct password
included, until the window has passed; a successful sign-in clears the account's count. The
account is keyed by a digest of the normalised address, so no address is written to Redis.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache

SIGN_IN_REFUSED = (
    "Too many failed sign-in attempts for this account or from your network. "
    "Please wait {minutes} minutes and try again."
)
RESET_REFUSED = "Too many password-reset e-mails were asked for. Please wait an hour and try again."


def _digest(email):
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]


def _keys(email, ip):
    return f"signin:fail:acct:{_digest(email)}", f"signin:fail:ip:{ip}"


def _count(key, window):
    """One more in a window that starts with the first; returns the new count."""
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1


def window_minutes():
    return settings.SIGN_IN_FAILURE_WINDOW_MINUTES


def sign_in_blocked(*, email, ip):
    """True when the account or the address has used up its failed attempts in the window."""
    account, address = _keys(email, ip)
    counts = cache.get_many([account, address])
    return (
        counts.get(account, 0) >= settings.SIGN_IN_FAILURES_PER_ACCOUNT
        or counts.get(address, 0) >= settings.SIGN_IN_FAILURES_PER_IP
    )


def sign_in_failed(*, email, ip):
    window = window_minutes() * 60
    for key in _keys(email, ip):
        _count(key, window)


def sign_in_succeeded(*, email):
    cache.delete(_keys(email, "")[0])


def password_reset_allowed(*, email, ip):
    """Counts one request; False past the hourly limits per address or per client address."""
    return (
        _count(f"reset:ip:{ip}", 3600) <= settings.PASSWORD_RESETS_PER_IP_PER_HOUR
        and _count(f"reset:acct:{_digest(email)}", 3600)
        <= settings.PASSWORD_RESETS_PER_ADDRESS_PER_HOUR
    )
