"""A real HTTP receiver for webhook tests: ``http.server`` on 127.0.0.1, an ephemeral port, in
a thread. It records every request and answers 200, or ``fail_first(n)`` times with an error
status first; ``acknowledge_with(secret)`` makes it answer an event that carries an
``ack_token`` with the signed ``Clearinghouse-Ack`` header, like a partner's receiver would.
``delay`` makes it a slow receiver: it counts the request in ``arrivals`` at once and answers
only after that many seconds; ``hold()`` makes it answer nothing until ``release()`` (a test that
kills the sender mid-request, however long that takes on a busy machine)."""

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from partners.webhooks import ACK_HEADER, ack_signature

from .waiting import wait_for


@dataclass
class Received:
    path: str
    headers: dict  # lower-cased names
    body: bytes
    answered: int

    def json(self):
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self):
        self.requests = []
        self._lock = threading.Lock()
        self._failures_left = 0
        self._failure_status = 500
        self._ack_secret = None
        self.response_body = b'{"ok": true}'
        self.delay = 0.0
        self.arrivals = 0
        self._answering = threading.Event()
        self._answering.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.arrivals += 1
                receiver._answering.wait()
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, extra = receiver._answer(body)
                receiver._record(self.path, dict(self.headers.items()), body, status)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.response_body)))
                self.end_headers()
                self.wfile.write(receiver.response_body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/clearinghouse"

    def fail_first(self, n, status=500):
        with self._lock:
            self._failures_left, self._failure_status = n, status

    def hold(self):
        """Answer no request (each is counted in ``arrivals``) until ``release()``."""
        self._answering.clear()

    def release(self):
        self._answering.set()

    def acknowledge_with(self, secret):
        self._ack_secret = secret

    def _answer(self, body):
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return self._failure_status, {}
        extra = {}
        if self._ack_secret:
            with contextlib.suppress(ValueError):
                token = json.loads(body).get("ack_token")
                if token:
                    extra[ACK_HEADER] = ack_signature(secret=self._ack_secret, token=token)
        return 200, extra

    def _record(self, path, headers, body, status):
        with self._lock:
            self.requests.append(
                Received(path, {k.lower(): v for k, v in headers.items()}, body, status)
            )

    def wait_for(self, count, progress=None):
        """The requests received once there are ``count`` of them, waiting on the arrivals and on
        ``progress`` (measures of whatever sends them, such as ``worker_progress``)."""
        return wait_for(
            lambda: self.requests if len(self.requests) >= count else None,
            what=f"{count} requests at the webhook receiver",
            progress={
                "arrivals": lambda: self.arrivals,
                "answered": lambda: len(self.requests),
                **(progress or {}),
            },
            interval=0.05,
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        return False


@pytest.fixture(name="receiver")
def receiver_fixture():
    """A running ``WebhookReceiver``, stopped after the test."""
    with WebhookReceiver() as running:
        yield running
