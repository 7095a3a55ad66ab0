"""WSGI entry point (gunicorn clearinghouse.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from .runtime import settle
from .serving import ChunkedBodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearinghouse.settings.production")

application = ChunkedBodies(get_wsgi_application())
settle()
