from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "clearinghouse.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self):
        from clearinghouse.records.signals import records_committed

        from . import notify  # noqa: F401  (registers the discrepancy payload builders)
        from .tasks import schedule_after_ingest

        def after_ingest(sender, partner, **kwargs):
            schedule_after_ingest(partner)

        records_committed.connect(
            after_ingest, dispatch_uid="reconciliation.after_ingest", weak=False
        )
