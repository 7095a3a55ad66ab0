"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from .runtime import settle

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearinghouse.settings.production")

application = get_asgi_application()
settle()
