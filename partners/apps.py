from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Partners"

    def ready(self):
        from .api import openapi  # noqa: F401  (registers the OpenAPI auth schemes)
