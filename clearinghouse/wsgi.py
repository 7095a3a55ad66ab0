"""WSGI entry point (gunicorn clearinghouse.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from .runtime import settle

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearinghouse.settings.production")

application = get_wsgi_application()
settle()
