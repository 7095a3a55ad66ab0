"""Per-credential rate limits in Redis: a fixed one-minute window counted with an atomic INCR,
so that every web process on every machine shares one count per key."""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)


class CredentialRateThrottle(BaseThrottle):
    window = 60

    def allow_request(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated:
            return True
        credential = getattr(user, "credential", None)  # an API key's client
        if credential is not None:
            ident = f"cred:{credential.pk}"
            limit = credential.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE
        else:
            ident = f"user:{user.pk}"
            limit = settings.API_RATE_LIMIT_PER_MINUTE
        now = time.time()
        window_start = int(now // self.window) * self.window
        key = f"throttle:{ident}:{window_start}"
        try:
            cache.add(key, 0, timeout=self.window + 5)
            count = cache.incr(key)
        except Exception:  # Redis unreachable: serve rather than refuse every caller.
            logger.warning("rate limit store unreachable; request let through", exc_info=True)
            return True
        self._wait = window_start + self.window - now
        return count <= limit

    def wait(self):
        return getattr(self, "_wait", None)
