"""Signing webhook deliveries and checking a receiver's acknowledgement.

A delivery carries ``Clearinghouse-Signature: t=<unix time>,v1=<hex>``: HMAC-SHA256 under the
endpoint's secret over ``f"{t}.".encode() + body`` (the raw request body, byte for byte). While a
rotated secret is in its grace period the header carries one ``v1`` per secret; a receiver
accepts the delivery when any of them verifies and ``t`` is recent (replay protection).

A receiver acknowledges an event that carries an ``ack_token`` by answering 2xx with
``Clearinghouse-Ack: <hex HMAC-SHA256(secret, ack_token)>``.
"""

import hashlib
import hmac
import time
from datetime import datetime

SIGNATURE_HEADER = "Clearinghouse-Signature"
ACK_HEADER = "Clearinghouse-Ack"
DEFAULT_TOLERANCE = 300  # seconds either side of the receiver's clock


def _as_bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


def _mac(secret, message):
    return hmac.new(_as_bytes(secret), _as_bytes(message), hashlib.sha256).hexdigest()


def signature_header(*, secrets, body, timestamp):
    """The header value for ``body`` signed at ``timestamp`` (unix seconds) with each secret."""
    signed = f"{int(timestamp)}.".encode() + _as_bytes(body)
    return ",".join([f"t={int(timestamp)}", *(f"v1={_mac(s, signed)}" for s in secrets)])


def _parse(header):
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if timestamp is not None or not value.isdigit():
                return None, []
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    return timestamp, signatures


def verify_signature(*, secret, header, body, tolerance=DEFAULT_TOLERANCE, now=None):
    """True when ``header`` holds a valid signature of ``body`` under ``secret`` made within
    ``tolerance`` seconds of ``now`` (unix seconds or an aware datetime; default: the clock).
    A timestamp outside the window is refused even with a valid signature: a captured delivery
    cannot be replayed later."""
    timestamp, signatures = _parse(header)
    if timestamp is None or not signatures:
        return False
    if now is None:
        now = time.time()
    elif isinstance(now, datetime):
        now = now.timestamp()
    if abs(now - timestamp) > tolerance:
        return False
    expected = _mac(secret, f"{timestamp}.".encode() + _as_bytes(body))
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def ack_signature(*, secret, token):
    """What a receiver answers in ``Clearinghouse-Ack`` to acknowledge the event of ``token``."""
    return _mac(secret, token)


def verify_ack(*, secrets, token, header):
    """True when ``header`` is the acknowledgement of ``token`` under one of ``secrets``."""
    if not token or not header:
        return False
    header = header.strip().lower()
    return any(hmac.compare_digest(ack_signature(secret=s, token=token), header) for s in secrets)
