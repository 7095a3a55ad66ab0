from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "clearinghouse.records"
    label = "records"
    verbose_name = "Interaction records"

    def ready(self):
        from consent.signals import consent_granted

        from . import receivers  # noqa: F401  (erasure and export hooks of the consent layer)
        from .announce import announce_after_grant, announce_after_ingest
        from .signals import records_committed

        def after_ingest(sender, partner, refs=(), **kwargs):
            announce_after_ingest(partner, refs)

        def after_grant(sender, grant_id, grantee_id, **kwargs):
            announce_after_grant(grant_id, grantee_id)

        records_committed.connect(after_ingest, dispatch_uid="records.announce", weak=False)
        consent_granted.connect(after_grant, dispatch_uid="records.announce_granted", weak=False)
