from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and identity"

    def ready(self):
        from . import receivers  # noqa: F401  (GDPR Art. 19 notices on withdrawal and erasure)
