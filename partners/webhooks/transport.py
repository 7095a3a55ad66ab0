"""Where a webhook may go, and the one HTTP POST that takes it there.

Endpoint addresses are checked twice: when they are registered (scheme, no credentials, no
fragment) and when a delivery is made, after the host name is resolved. Outside development the
delivery refuses plain HTTP and any address that is not globally routable (loopback, private,
link-local such as a cloud metadata service, …), and it connects to exactly the address it
checked, so a DNS answer that changes between the check and the connection cannot redirect it.

Standard library only (``http.client``), because a webhook needs none of what a client library
adds and must not follow redirects: a 3xx answer is a failed attempt like any other non-2xx.
"""

import contextlib
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

URL_MAX_LENGTH = 2000
EXCERPT_CHARS = 500
READ_LIMIT = 4096
USER_AGENT = "Clearinghouse-Webhooks/1"


class DeliveryRefused(Exception):
    """This address may not receive deliveries: retrying will not help."""


class TransportError(Exception):
    """The attempt failed before an HTTP answer arrived (DNS, connection, TLS, timeout)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict = field(default_factory=dict)  # lower-cased names
    excerpt: str = ""


def allow_http():
    return bool(getattr(settings, "WEBHOOKS_ALLOW_HTTP", False))


def allow_private_addresses():
    """Loopback and private addresses are fine on a developer's machine and in tests, never in
    production; unless set on its own, this follows ``WEBHOOKS_ALLOW_HTTP``."""
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", allow_http()))


def _host_is_private_literal(host):
    if host.lower() in {"localhost", "localhost."} or host.lower().endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        return False


def validate_endpoint_url(url):
    """The URL cleaned for storage, or ``ValidationError`` with a message for the partner."""
    url = (url or "").strip()
    if not url:
        raise ValidationError({"url": "Enter the address of your receiver."})
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError({"url": f"Keep the address under {URL_MAX_LENGTH} characters."})
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise ValidationError({"url": "Enter a valid http(s) address."}) from exc
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValidationError(
            {"url": "Leave credentials out of the address: deliveries are signed instead."}
        )
    if parts.fragment:
        raise ValidationError({"url": "Leave the #fragment out of the address."})
    if parts.scheme == "http" and not allow_http():
        raise ValidationError({"url": "The address must use HTTPS."})
    if not allow_private_addresses() and _host_is_private_literal(parts.hostname or ""):
        raise ValidationError({"url": "The address must be reachable on the public internet."})
    return url


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    target: str  # path and query
    address: str  # the resolved IP address connected to


def destination(url):
    """Check ``url`` as the delivery is about to be made and resolve its host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise DeliveryRefused("The address is not a valid http(s) URL.")
    if parts.scheme == "http" and not allow_http():
        raise DeliveryRefused("Refused: plain HTTP is not allowed, the address must use HTTPS.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransportError(f"DNS: cannot resolve {parts.hostname}") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise TransportError(f"DNS: no address for {parts.hostname}")
    if not allow_private_addresses():
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise DeliveryRefused(
                    f"Refused: {parts.hostname} resolves to a non-public address ({address})."
                )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, parts.hostname, port, target, addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, *, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the address we pinned.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _describe(exc, timeout):
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"Timed out after {timeout} s."
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused."
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {getattr(exc, 'reason', None) or exc}"
    return f"{type(exc).__name__}: {exc}"


def post(dest, *, body, headers, timeout=10):
    """POST ``body`` to ``dest`` and return the answer's status, headers and the start of its
    body. Waits at most about ``timeout`` seconds in all; raises ``TransportError``."""
    deadline = time.monotonic() + timeout
    cls = _PinnedHTTPSConnection if dest.scheme == "https" else _PinnedHTTPConnection
    kwargs = {"context": ssl.create_default_context()} if dest.scheme == "https" else {}
    conn = cls(dest.host, dest.port, address=dest.address, timeout=timeout, **kwargs)
    try:
        conn.request("POST", dest.target, body=body, headers={"User-Agent": USER_AGENT, **headers})
        sock = conn.sock  # the response may take it over from the connection
        response = conn.getresponse()
        chunks, size = [], 0
        while size < READ_LIMIT:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(OSError, AttributeError):
                sock.settimeout(remaining)
            chunk = response.read1(READ_LIMIT - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        excerpt = b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_CHARS]
        return Answer(
            status=response.status,
            headers={k.lower(): v for k, v in response.getheaders()},
            excerpt=excerpt,
        )
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(_describe(exc, timeout)[:300]) from exc
    finally:
        conn.close()
