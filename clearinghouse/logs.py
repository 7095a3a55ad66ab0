"""Logs that can be followed and shared: one JSON object a line (LOG_FORMAT=json, the production
default) or plain text, each record carrying the id of the request (or of the request that
enqueued the task) it belongs to, and no secret in any of them.

The request id comes from the caller's X-Request-ID when that is short and made of safe
characters (so that a proxy's id links its logs with ours), else it is made here; it is sent back
in the response's X-Request-ID. It lives in a context variable for the request, is copied into the
headers of every Celery task enqueued meanwhile, and is set again while the worker runs the task.

Redaction is a filter on the handlers, so it applies to every logger, ours or a library's:
bearer tokens and Authorization headers, API keys (``chk_…``), webhook secrets (``whsec_…``),
the tokens in sign-in, invitation and password-reset links, and values named like passwords,
secrets or tokens are replaced before anything is written.
"""

import contextvars
import datetime
import logging
import re
import traceback
import uuid

import orjson
from django.core.signals import request_finished
from django.dispatch import receiver

request_id = contextvars.ContextVar("request_id", default=None)

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REDACTED = "[redacted]"
_SECRETS = [
    # Authorization: Bearer …, and any "authorization" value in a dict or header dump.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]+"), r"\1 " + REDACTED),
    (
        re.compile(r"""(?i)(["']?(?:http_)?authorization["']?\s*[:=]\s*["']?)[^"'\n,}]+"""),
        r"\1" + REDACTED,
    ),
    # API keys keep their public prefix (it names the key in the portal), not their secret.
    (re.compile(r"\b(chk_[A-Za-z0-9]+_)[A-Za-z0-9_-]+"), r"\1" + REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9_-]+"), "whsec_" + REDACTED),
    # One-time links: dashboard sign-in, staff invitations, password resets.
    (re.compile(r"(/me/link/|/portal/join/)[^/\s\"'?]+"), r"\1" + REDACTED),
    (re.compile(r"(/accounts/reset/[^/\s\"']+/)[^/\s\"'?]+"), r"\1" + REDACTED),
    # key=value, "key": "value", key: value for names that hold secrets.
    (
        re.compile(
            r"""(?i)(["']?\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|sessionid)[\w-]*"""
            r"""["']?\s*(?:=|:)\s*(?:\[\s*)?["']?)[^"'&\s,;}\]]+"""
        ),
        r"\1" + REDACTED,
    ),
]


def redact(text):
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def accept_request_id(value):
    """The caller's id when it is safe to log and echo, else a new one."""
    if value and _SAFE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the request (logs, tasks) and answers it in X-Request-ID."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = accept_request_id(request.headers.get("X-Request-ID"))
        request.request_id = rid
        # Kept until the request is finished, not reset on the way out: Django logs 4xx/5xx
        # answers after the middleware has returned.
        request_id.set(rid)
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        return response


@receiver(request_finished)
def _forget_request_id(**kwargs):
    request_id.set(None)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``-`` outside a request or task)."""

    def filter(self, record):
        record.request_id = request_id.get() or "-"
        return True


class RedactSecretsFilter(logging.Filter):
    """Rewrites the record's message and traceback with every secret replaced."""

    def filter(self, record):
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request id, and what a
    request's record adds (status code, method and path)."""

    def format(self, record):
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        status = getattr(record, "status_code", None)
        if status is not None:
            entry["status"] = status
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "method"):
            entry["method"] = request.method
            entry["path"] = redact(request.path)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


def logging_config(*, fmt, level):
    """The LOGGING setting: one console handler with the request id and redaction filters."""
    if fmt not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT must be json or plain, not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "clearinghouse.logs.RequestIdFilter"},
            "redact": {"()": "clearinghouse.logs.RedactSecretsFilter"},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
            "json": {"()": "clearinghouse.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["request_id", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Only the console handler above: Django's own (DEBUG console, mail to admins)
            # would write records without the request id and the redaction.
            "django": {"handlers": [], "propagate": True},
            "django.db.backends": {"level": "WARNING"},
        },
    }
