"""What the WSGI server hands Django, made whole; and gunicorn's settings for every way the
project serves (``gunicorn -c python:clearinghouse.serving``: ``make run``, the tests' and the
benchmarks' servers).

- Chunked request bodies. A client that streams its body (``Transfer-Encoding: chunked``: curl
  ``-T -``, requests with a generator, most SDKs) sends no Content-Length. gunicorn decodes the
  chunks and marks the stream as ending by itself (``wsgi.input_terminated``), but Django reads
  a body only up to Content-Length, and without one it sees an empty body: an upload answered
  ``200 accepted: 0`` with nothing stored. ``ChunkedBodies`` reads such a body first (spooled to
  a temporary file past 1 MiB, never more than the largest body any endpoint takes) and hands
  Django a body of known length. A server that cannot say where a chunked body ends gets 411.
- gunicorn's own error answers (a request line over its limit: 414; a malformed request: 400)
  are written by gunicorn before Django sees the request, as HTML. ``post_worker_init`` makes
  them ``application/problem+json`` like every other error of the API: gunicorn offers no hook
  for these answers, so its one writer of them is replaced in each worker process.
"""

import json
import tempfile

from django.conf import settings

SPOOL_IN_MEMORY = 1024 * 1024
READ = 1 << 16


def problem_bytes(status, title, detail):
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()


class ChunkedBodies:
    """WSGI middleware: a chunked request body becomes a body of known length (see above)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked or environ.get("CONTENT_LENGTH"):
            return self.app(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            return _refuse(
                start_response,
                411,
                "Length Required",
                "This server cannot read a chunked body: send a Content-Length.",
            )
        limit = max(
            settings.INGEST_MAX_BODY_BYTES,
            settings.API_MAX_BODY_BYTES,
            settings.PAGE_MAX_BODY_BYTES,
        )
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        stream, size = environ["wsgi.input"], 0
        while chunk := stream.read(READ):
            size += len(chunk)
            if size > limit:
                body.close()
                return _refuse(
                    start_response,
                    413,
                    "Payload too large",
                    f"The body must be at most {limit} bytes.",
                )
            body.write(chunk)
        body.seek(0)
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(size)
        try:
            response = self.app(environ, start_response)
        except BaseException:
            body.close()
            raise
        return _ClosingAfter(response, body)


class _ClosingAfter:
    """The application's response, closing the spooled body when the server closes it."""

    def __init__(self, response, body):
        self.response, self.body = response, body

    def __iter__(self):
        return iter(self.response)

    def close(self):
        try:
            if hasattr(self.response, "close"):
                self.response.close()
        finally:
            self.body.close()


def _refuse(start_response, status, title, detail):
    body = problem_bytes(status, title, detail)
    start_response(
        f"{status} {title}",
        [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# --- gunicorn ----------------------------------------------------------------------------------


def write_problem(sock, status_int, reason, mesg):
    """gunicorn's ``util.write_error``, answering problem+json instead of an HTML page."""
    from gunicorn import util

    body = problem_bytes(status_int, reason, mesg or reason)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def post_worker_init(worker):
    """gunicorn hook, in each worker process once it is set up."""
    from gunicorn import util

    util.write_error = write_problem
