"""Development: DEBUG on, e-mails written to .data/mail, static files served from the source."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Webhook endpoints may be plain HTTP on a developer's machine only.
WEBHOOKS_ALLOW_HTTP = True
