"""The project's URLs plus views that misbehave the way careless code does: one that logs the
request's headers and form, one that fails with them in its error."""

import logging

from django.urls import path

from clearinghouse.urls import urlpatterns as project_urls

logger = logging.getLogger("tests.careless")


def logs_everything(request):
    logger.warning("headers %s form %s", dict(request.headers), request.POST.dict())
    raise RuntimeError(f"failed with {request.headers.get('Authorization')} {request.POST.dict()}")


urlpatterns = [path("careless/", logs_everything), *project_urls]
