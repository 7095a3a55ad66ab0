from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "clearinghouse.records"
    label = "records"
    verbose_name = "Interaction records"

    def ready(self):
        from . import receivers  # noqa: F401  (erasure and export hooks of the consent layer)
        from .announce import announce_after_ingest
        from .signals import records_committed

        def after_ingest(sender, partner, refs=(), **kwargs):
            announce_after_ingest(partner, refs)

        records_committed.connect(after_ingest, dispatch_uid="records.announce", weak=False)
