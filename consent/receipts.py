"""Consent receipts signed with the clearinghouse's Ed25519 key.

The signed bytes are the canonical JSON of the payload (sorted keys, no spaces, UTF-8). The
public keys are published as a JWKS at /.well-known/clearinghouse-receipt-keys.json, so anyone can
check a receipt without trusting the clearinghouse's web pages.
"""

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .keys import receipt_keyring, receipt_signing_key
from .models import Receipt

RECEIPT_VERSION = "clearinghouse-receipt-1"
JURISDICTION = "EU"


def canonical_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(signature base64url, key id) over the canonical payload."""
    ring = receipt_keyring()
    signature = receipt_signing_key(ring.current).sign(canonical_bytes(payload))
    return base64.urlsafe_b64encode(signature).decode().rstrip("="), ring.current


def _public_key(key_id: str) -> Ed25519PublicKey:
    return receipt_signing_key(key_id).public_key()


def verify(payload: Mapping[str, Any], signature: str, key_id: str) -> bool:
    """True when the signature is the clearinghouse's over exactly this payload."""
    try:
        public = _public_key(key_id)
        padded = signature + "=" * (-len(signature) % 4)
        public.verify(base64.urlsafe_b64decode(padded), canonical_bytes(payload))
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True


def verify_with_jwk(document: Mapping[str, Any], jwk: Mapping[str, str]) -> bool:
    """Check a downloaded receipt document against one published JWK, as a customer would."""
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    public = Ed25519PublicKey.from_public_bytes(raw)
    sig = document["signature"]
    try:
        public.verify(
            base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
            canonical_bytes(document["receipt"]),
        )
    except InvalidSignature:
        return False
    return True


def jwks() -> dict[str, list[dict[str, str]]]:
    keys = []
    ring = receipt_keyring()
    for version in ring.keys:
        raw = _public_key(version).public_bytes(Encoding.Raw, PublicFormat.Raw)
        keys.append(
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": version,
                "x": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            }
        )
    return {"keys": keys}


def receipt_document(receipt: Receipt) -> dict[str, Any]:
    """The downloadable form: what was signed, the signature and the key id."""
    return {
        "receipt": receipt.payload,
        "signature": receipt.signature,
        "alg": "EdDSA",
        "kid": receipt.key_id,
        "public_keys": "/.well-known/clearinghouse-receipt-keys.json",
    }
