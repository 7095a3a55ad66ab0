from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "clearinghouse.records"
    label = "records"
    verbose_name = "Interaction records"

    def ready(self):
        from . import receivers  # noqa: F401  (erasure and export hooks of the consent layer)
