"""Identifiers: normalisation, keyed digests and envelope encryption.

A partner names a customer by e-mail, phone or loyalty number, either raw or as the SHA-256 (hex)
of the normalised value. Both resolve to the same digest:

    digest = HMAC-SHA256(key[version], "<kind>:<namespace>:" + sha256_hex(normalised value))

Loyalty numbers are namespaced by the programme (the partner that issued them); e-mail and phone
are global, so the same person submitted by a manufacturer and a retailer meets in one subject.

Raw values are kept only encrypted with AES-GCM under the customer's own data key; the data key is
wrapped (AES-GCM again) by a master key from a versioned keyring. Destroying the wrapped data key
makes every value of that customer undecryptable (crypto-shredding).
"""

import functools
import hashlib
import hmac
import os
import re
import uuid
from dataclasses import dataclass

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email

from .keys import hmac_keyring, master_keyring

EMAIL, PHONE, LOYALTY = "email", "phone", "loyalty"
KINDS = (EMAIL, PHONE, LOYALTY)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")  # fullmatch: "$" would take a trailing newline
LOYALTY_RE = re.compile(r"[A-Z0-9]{4,40}")
# The common shape of an address (a dot-atom local part and a host name), spelled with Django's
# own patterns: what matches here ``validate_email`` accepts too, so only the rest (quoted local
# parts, address literals, errors) pays for the full validator.
PLAIN_EMAIL = re.compile(
    r"[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*@"
    + EmailValidator.hostname_re
    + EmailValidator.domain_re
    + EmailValidator.tld_no_fqdn_re
    + r"\Z",
    re.IGNORECASE,
)


def normalise(kind: str, value: object) -> str:
    """The canonical form of an identifier, or ValidationError saying what is wrong."""
    if not isinstance(value, str):
        raise ValidationError("The identifier must be a string.")
    value = value.strip()
    if kind == EMAIL:
        value = value.lower()
        if len(value) > 254:
            raise ValidationError("The e-mail address is too long.")
        if not PLAIN_EMAIL.match(value):
            validate_email(value)
        return value
    if kind == PHONE:
        region = settings.PHONE_DEFAULT_REGION or None
        compact = re.sub(r"[\s().\-/]", "", value)
        if compact.startswith("00"):  # the international call prefix used across Europe
            value = "+" + compact[2:]
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError(
                "The phone number is not valid: use the international format, e.g. +4930123456."
            ) from exc
        if not phonenumbers.is_possible_number(number):
            raise ValidationError("The phone number is not a possible number.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind == LOYALTY:
        value = re.sub(r"[\s\-]", "", value).upper()
        if not LOYALTY_RE.fullmatch(value):
            raise ValidationError("A loyalty number is 4 to 40 letters or digits.")
        return value
    raise ValidationError(f"Unknown identifier kind {kind!r}: use one of {', '.join(KINDS)}.")


def prehash(normalised: str) -> str:
    """What a partner may send instead of the raw value: SHA-256 hex of the normalised form."""
    return hashlib.sha256(normalised.encode()).hexdigest()


def namespace_for(kind: str, programme_id: uuid.UUID | None = None) -> str:
    if kind == LOYALTY:
        if programme_id is None:
            raise ValidationError("A loyalty number needs its programme.")
        return str(programme_id)
    return ""


@functools.lru_cache(maxsize=16)
def _keyed_hmac(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 with the key already absorbed; each digest starts from a copy of it (the
    key set-up costs more than hashing a short message)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def keyed_digest(kind: str, namespace: str, sha256_hex: str, version: str | None = None) -> bytes:
    ring = hmac_keyring()
    version = version or ring.current
    mac = _keyed_hmac(ring.get(version)).copy()
    mac.update(f"{kind}:{namespace}:{sha256_hex}".encode())
    return mac.digest()


@dataclass(frozen=True)
class ParsedIdentifier:
    """An identifier as a partner sent it, checked and reduced to what we match on."""

    kind: str
    namespace: str
    sha256: str  # of the normalised value
    raw: str | None  # the normalised value, when it was sent raw

    def digests(self) -> list[tuple[str, bytes]]:
        """(version, digest) under every HMAC key version still configured."""
        return [
            (v, keyed_digest(self.kind, self.namespace, self.sha256, v))
            for v in hmac_keyring().keys
        ]

    def current_digest(self) -> tuple[str, bytes]:
        ring = hmac_keyring()
        return ring.current, keyed_digest(self.kind, self.namespace, self.sha256, ring.current)


def parse_identifier(
    *,
    kind: str,
    value: object = None,
    sha256: object = None,
    programme_id: uuid.UUID | None = None,
) -> ParsedIdentifier:
    """Check and normalise one identifier given raw (``value``) or pre-hashed (``sha256``)."""
    if kind not in KINDS:
        raise ValidationError(f"Unknown identifier kind {kind!r}: use one of {', '.join(KINDS)}.")
    if (value is None) == (sha256 is None):
        raise ValidationError("Send either the identifier's value or its sha256, not both.")
    namespace = namespace_for(kind, programme_id)
    if value is not None:
        raw = normalise(kind, value)
        return ParsedIdentifier(kind, namespace, prehash(raw), raw)
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256.strip().lower()):
        raise ValidationError("sha256 must be 64 hexadecimal characters.")
    return ParsedIdentifier(kind, namespace, sha256.strip().lower(), None)


# --- envelope encryption -----------------------------------------------------------------------

NONCE = 12


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


@functools.lru_cache(maxsize=16)
def _master_cipher(key: bytes) -> AESGCM:
    """One AESGCM per master key: a batch wraps thousands of data keys under the same one."""
    return AESGCM(key)


def wrap_data_key(
    data_key: bytes, customer_id: uuid.UUID, version: str | None = None
) -> tuple[str, bytes]:
    """(version, wrapped bytes): the data key sealed under a master key, bound to its customer."""
    ring = master_keyring()
    version = version or ring.current
    nonce = os.urandom(NONCE)
    sealed = _master_cipher(ring.get(version)).encrypt(
        nonce, data_key, f"dk:{customer_id}".encode()
    )
    return version, nonce + sealed


def unwrap_data_key(wrapped: bytes | memoryview, customer_id: uuid.UUID, version: str) -> bytes:
    ring = master_keyring()
    return _master_cipher(ring.get(version)).decrypt(
        bytes(wrapped[:NONCE]), bytes(wrapped[NONCE:]), f"dk:{customer_id}".encode()
    )


def encrypt_value(data_key: bytes, plaintext: str, context: str) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext.encode(), context.encode())


def decrypt_value(data_key: bytes, blob: bytes | memoryview, context: str) -> str:
    blob = bytes(blob)
    return AESGCM(data_key).decrypt(blob[:NONCE], blob[NONCE:], context.encode()).decode()
