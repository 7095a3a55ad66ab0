from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and identity"

    def ready(self):
        from . import notices, receivers  # noqa: F401  (Art. 19 notices and their payload builder)
