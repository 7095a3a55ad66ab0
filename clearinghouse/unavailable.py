"""A clear 503 while PostgreSQL or Redis is away, for the requests outside DRF.

The API's exception handler (``clearinghouse.common.api.problems``) answers DRF views with a 503
problem+json; this middleware does the same for every other view: problem+json under /api/, a
plain HTML page elsewhere, both with Retry-After. Without it such a request would be a 500,
which says "our bug" where the truth is "try again in a moment"."""

from django.http import HttpResponse
from django.template import loader

from clearinghouse.common.api.problems import (
    RETRY_AFTER_SECONDS,
    SERVICE_UNAVAILABLE_ERRORS,
    ServiceUnavailable,
    problem_response,
    service_unavailable_logged,
)


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, SERVICE_UNAVAILABLE_ERRORS):
            return None
        service_unavailable_logged(exception, request)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if request.path.startswith("/api/"):
            return problem_response(
                request,
                ServiceUnavailable.status_code,
                ServiceUnavailable.default_detail,
                code=ServiceUnavailable.default_code,
                headers=headers,
            )
        # Rendered without the request: its context processors need the database.
        return HttpResponse(loader.get_template("503.html").render(), status=503, headers=headers)
