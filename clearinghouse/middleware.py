"""Response headers that every page carries (the Content-Security-Policy and the
Permissions-Policy), the body types that pages accept, and the client's address behind reverse
proxies.

Django 5.2 has no CSP of its own. The policy is a setting (``CONTENT_SECURITY_POLICY``, a mapping
of directive to sources) so that a deployment can tighten it without code; the default allows
scripts, styles and images only from this origin and nothing inline, which is why the templates
carry no ``style=`` attributes, inline ``<script>`` blocks or ``on…=`` handlers.
"""

import ipaddress

from django.conf import settings
from django.http import HttpResponse


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
