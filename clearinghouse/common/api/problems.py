"""RFC 9457 problem details for every API error.

DRF's exceptions, Django's 404/403 and validation errors all leave the API as
``application/problem+json``: ``type``, ``title``, ``status``, ``detail``, ``instance``, and for
validation errors an ``errors`` list with one entry per field (``field`` is a dotted path). The
browsable API renders successes as HTML for staff, but an error is always problem+json.
"""

import logging
import math

import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError
from django.db import OperationalError as DatabaseUnavailable
from django.http import Http404, JsonResponse
from kombu.exceptions import OperationalError as BrokerUnavailable
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "urn:clearinghouse:problem:"

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


# PostgreSQL or Redis cannot be reached (down, restarting, refusing connections, a timeout):
# the caller gets a 503 with Retry-After, never a 500 — nothing was committed, trying again later
# is the right thing to do.
SERVICE_UNAVAILABLE_ERRORS = (
    DatabaseUnavailable,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerUnavailable,
)
RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The service is briefly unavailable; nothing was changed. Try again shortly."
    default_code = "unavailable"

    def __init__(self):
        super().__init__()
        self.wait = RETRY_AFTER_SECONDS  # DRF turns it into Retry-After


class Conflict(exceptions.APIException):
    """The request is valid but the object's current state refuses it (409)."""

    status_code = 409
    default_detail = "This conflicts with the current state."
    default_code = "conflict"


def service_unavailable_logged(exc, request=None):
    """Log an outage error once, briefly (it is expected while a service restarts)."""
    path = request.path if request is not None else "?"
    logger.warning("503 for %s: %s: %s", path, type(exc).__name__, str(exc)[:200])


class ProblemJSONRenderer(JSONRenderer):
    media_type = PROBLEM_CONTENT_TYPE
    format = "problem+json"


def problem(status_code, detail, *, code=None, errors=None, instance=None, **extra):
    """The problem body. ``code`` becomes the ``type`` URN; without one the type is about:blank."""
    body = {
        "type": f"{TYPE_BASE}{code}" if code else "about:blank",
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def flatten_errors(detail, path=""):
    """DRF's nested error dicts/lists as a flat list of {field, message, code}."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if key == "non_field_errors":
                name = path
            elif isinstance(key, int):
                name = f"{path}[{key}]"
            else:
                name = f"{path}.{key}" if path else str(key)
            out.extend(flatten_errors(value, name))
        return out
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail | str) for item in detail):
            return [
                {"field": path or None, "message": str(item), "code": getattr(item, "code", None)}
                for item in detail
            ]
        out = []
        for index, item in enumerate(detail):
            out.extend(flatten_errors(item, f"{path}[{index}]" if path else f"[{index}]"))
        return out
    return [{"field": path or None, "message": str(detail), "code": getattr(detail, "code", None)}]


def problem_exception_handler(exc, context):
    if isinstance(exc, SERVICE_UNAVAILABLE_ERRORS):
        service_unavailable_logged(exc, context.get("request"))
        exc = ServiceUnavailable()
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's handler500 answers with problem+json
    request = context.get("request")
    instance = request.get_full_path() if request is not None else None
    status_code = response.status_code
    code = None
    errors = None
    extra = {}
    if isinstance(exc, exceptions.ValidationError):
        detail = "The request is not valid; see errors for each field."
        errors = flatten_errors(exc.detail)
        code = "validation"
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        if isinstance(detail, dict | list):
            errors = flatten_errors(detail)
            detail = "The request was refused."
        code = getattr(detail, "code", None)
        if isinstance(exc, Http404 | DjangoPermissionDenied) or code in (
            "not_found",
            "permission_denied",
            "error",
        ):
            code = None
        detail = str(detail)
        if isinstance(exc, exceptions.Throttled | ServiceUnavailable) and exc.wait is not None:
            extra["retry_after"] = max(1, math.ceil(exc.wait))
    body = problem(status_code, detail, code=code, errors=errors, instance=instance, **extra)
    headers = {k: v for k, v in response.items() if k.lower() != "content-type"}
    if "retry_after" in extra:  # DRF writes the header rounded down; both say the same
        headers["Retry-After"] = str(extra["retry_after"])
    problem_response = Response(body, status=status_code, headers=headers)
    problem_response.content_type = PROBLEM_CONTENT_TYPE
    if request is not None:
        # Errors are problem+json even for the browsable API.
        request.accepted_renderer = ProblemJSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    return problem_response


def problem_response(request, status_code, detail, *, code=None, headers=None):
    """A problem+json answer outside DRF (URL not found, server error, health)."""
    return JsonResponse(
        problem(status_code, detail, code=code, instance=request.get_full_path()),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


__all__ = ["problem_exception_handler", "problem_response", "status"]
