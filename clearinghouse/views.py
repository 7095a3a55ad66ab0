"""Project-level pages: the landing page, the health check, and error pages that answer
problem+json under /api/ and HTML elsewhere."""

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from clearinghouse.common.api.problems import problem_response


def home(request):
    return render(request, "home.html")


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's)."""
    return redirect(static("img/favicon.svg"), permanent=True)


@never_cache
@require_GET
def healthz(request):
    """200 when PostgreSQL and Redis both answer, 503 (with which one failed) otherwise."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {exc.__class__.__name__}"
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )


def _is_api(request):
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    if _is_api(request):
        return problem_response(request, 400, "The request could not be understood.")
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    if _is_api(request):
        return problem_response(request, 403, "You may not do this.")
    return render(request, "403.html", status=403)


def page_not_found(request, exception=None):
    if _is_api(request):
        return problem_response(request, 404, "There is nothing at this address.")
    return render(request, "404.html", status=404)


@csrf_exempt  # an API client's POST to a wrong address is a 404, not a CSRF failure
def api_not_found(request):
    return problem_response(request, 404, "There is nothing at this address.")


def server_error(request):
    if _is_api(request):
        return problem_response(
            request, 500, "Something went wrong on our side. It has been logged; try again later."
        )
    # Rendered without the request: the context processors need the database, which may be
    # the very thing that failed.
    return HttpResponseServerError(loader.get_template("500.html").render())


def csrf_failure(request, reason=""):
    if _is_api(request):
        return problem_response(
            request,
            403,
            "CSRF check failed: API clients authenticate with a Bearer key.",
            code="csrf",
        )
    return render(request, "403_csrf.html", status=403)
