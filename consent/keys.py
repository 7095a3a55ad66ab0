"""Key material for customer identity: the HMAC keys that turn identifiers into digests, the
master keys that wrap each customer's data key, and the Ed25519 keys that sign receipts.

Each is a versioned keyring from settings (``"2:base64,1:base64"``); the ``*_ID`` setting names the
version used for new data, and every listed version stays usable for reading. In development, with
nothing configured, one version ``dev`` of each is derived from SECRET_KEY, so that a fresh clone
works; production settings refuse to start that way.
"""

import base64
import functools
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Keyring:
    current: str
    keys: dict  # version -> bytes

    def get(self, version):
        try:
            return self.keys[version]
        except KeyError:
            raise KeyError(
                f"key version {version!r} is not in the keyring (retired too early?)"
            ) from None


def _derive(label):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(
        settings.SECRET_KEY.encode()
    )


def _parse(setting, current_setting, label):
    raw = getattr(settings, setting, "") or ""
    if not raw.strip():
        return Keyring(current="dev", keys={"dev": _derive(f"clearinghouse:{label}:dev")})
    keys = {}
    for item in raw.split(","):
        version, sep, value = item.strip().partition(":")
        if not sep or not version:
            raise ImproperlyConfigured(f"{setting}: expected 'version:base64key,…'")
        key = base64.b64decode(value)
        if len(key) != 32:
            raise ImproperlyConfigured(f"{setting}: key {version!r} must be 32 bytes")
        keys[version] = key
    current = getattr(settings, current_setting, "") or next(iter(keys))
    if current not in keys:
        raise ImproperlyConfigured(f"{current_setting}={current!r} is not in {setting}")
    return Keyring(current=current, keys=keys)


@functools.cache
def hmac_keyring():
    return _parse("IDENTIFIER_HMAC_KEYS", "IDENTIFIER_HMAC_KEY_ID", "identifier-hmac")


@functools.cache
def master_keyring():
    return _parse("MASTER_KEYS", "MASTER_KEY_ID", "master")


@functools.cache
def receipt_keyring():
    return _parse("RECEIPT_SIGNING_KEYS", "RECEIPT_SIGNING_KEY_ID", "receipt-ed25519")


def receipt_signing_key(version=None):
    ring = receipt_keyring()
    return Ed25519PrivateKey.from_private_bytes(ring.get(version or ring.current))


def reset_caches():
    """Forget parsed keyrings (tests that change the settings call this)."""
    for fn in (hmac_keyring, master_keyring, receipt_keyring):
        fn.cache_clear()
