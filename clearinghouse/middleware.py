"""Response headers that every page carries (the Content-Security-Policy and the
Permissions-Policy), the body types and sizes that pages and endpoints accept, API errors as
problem+json whatever produced them, and the client's address behind reverse proxies.

Django 5.2 has no CSP of its own. The policy is a setting (``CONTENT_SECURITY_POLICY``, a mapping
of directive to sources) so that a deployment can tighten it without code; the default allows
scripts, styles and images only from this origin and nothing inline, which is why the templates
carry no ``style=`` attributes, inline ``<script>`` blocks or ``on…=`` handlers.
"""

import ipaddress

from django.conf import settings
from django.http import HttpResponse

from clearinghouse.common.api.problems import PROBLEM_CONTENT_TYPE, TITLES, problem_response


def _serialise(policy):
    return "; ".join(
        " ".join([directive, *sources]) if sources else directive
        for directive, sources in policy.items()
    )


class SecurityHeadersMiddleware:
    """Adds the CSP (or its report-only twin) and the Permissions-Policy to every response that
    does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.csp = _serialise(settings.CONTENT_SECURITY_POLICY)
        self.csp_header = (
            "Content-Security-Policy-Report-Only"
            if settings.CONTENT_SECURITY_POLICY_REPORT_ONLY
            else "Content-Security-Policy"
        )
        self.permissions = settings.PERMISSIONS_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        # Under DEBUG an error answer is Django's technical page, made of inline style and
        # script; it never reaches production (DEBUG is off there).
        debug_page = settings.DEBUG and response.status_code >= 400
        if self.csp and not debug_page:
            response.headers.setdefault(self.csp_header, self.csp)
        if self.permissions:
            response.headers.setdefault("Permissions-Policy", self.permissions)
        return response


FORM_CONTENT_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


class FormContentTypeMiddleware:
    """Pages (everything outside /api/) take HTML form posts only: another body type is answered
    415 before any view sees an empty form it would have to make sense of."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method not in ("GET", "HEAD", "OPTIONS")
            and not request.path.startswith("/api/")
            and request.content_type not in FORM_CONTENT_TYPES
        ):
            return HttpResponse(
                "This page accepts form submissions only "
                "(application/x-www-form-urlencoded or multipart/form-data).",
                status=415,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


class TrustedProxyMiddleware:
    """Behind ``TRUSTED_PROXY_COUNT`` reverse proxies, REMOTE_ADDR is the nearest proxy's address
    and the client's is the one the outermost proxy appended to X-Forwarded-For (the
    ``TRUSTED_PROXY_COUNT``-th entry from the right). REMOTE_ADDR is rewritten to it, so that the
    per-address limits (sign-in, password reset, dashboard links) count clients rather than the
    proxy. Entries further left were sent by the client and are never believed. With no
    trusted proxy (the default) the header is ignored altogether."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.count = settings.TRUSTED_PROXY_COUNT

    def __call__(self, request):
        if self.count:
            hops = [
                hop.strip()
                for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                if hop.strip()
            ]
            if len(hops) >= self.count:
                try:
                    client = str(ipaddress.ip_address(hops[-self.count]))
                except ValueError:
                    client = None
                if client:
                    request.META["REMOTE_ADDR"] = client
        return self.get_response(request)


def _is_api(request):
    return request.path_info.startswith("/api/")


class RequestBodyLimitMiddleware:
    """A body larger than its endpoint takes is refused (413) before anything reads it: a CSV
    upload page, an ingest (``INGEST_MAX_BODY_BYTES``), any other API body
    (``API_MAX_BODY_BYTES``) or page form (``PAGE_MAX_BODY_BYTES``). A view names the setting of
    its own limit in ``max_body_setting``. Listed before the CSRF check, which reads a form's
    body. A Content-Length that is not a number is a 400 (gunicorn refuses it before us; other
    servers may not)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not (declared.isascii() and declared.isdigit()):
            return _refused(request, 400, "The Content-Length header is not a number.")
        view = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        setting = getattr(view, "max_body_setting", None) or (
            "API_MAX_BODY_BYTES" if _is_api(request) else "PAGE_MAX_BODY_BYTES"
        )
        limit = getattr(settings, setting)
        if int(declared) > limit:
            return _refused(request, 413, f"The body must be at most {limit} bytes.")
        return None


def _refused(request, status, detail):
    if _is_api(request):
        return problem_response(request, status, detail)
    return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")


class APIProblemsMiddleware:
    """Every error answer under /api/ is ``application/problem+json``, whoever wrote it: DRF's
    handler writes most; this catches the rest (Django's debug pages under DEBUG, a CSRF
    failure, an error page of a view that is not DRF's), keeping the status and headers and
    leaving out the body, which may be a debug page's internals."""

    DETAILS = {
        404: "There is nothing at this address.",
        500: "Something went wrong on our side; it has been logged.",
    }

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not _is_api(request):
            return response
        if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
            return response
        status = response.status_code
        detail = self.DETAILS.get(status, TITLES.get(status, "The request failed."))
        answer = problem_response(request, status, detail)
        for name, value in response.items():
            if name.lower() not in ("content-type", "content-length"):
                answer.headers.setdefault(name, value)
        return answer
