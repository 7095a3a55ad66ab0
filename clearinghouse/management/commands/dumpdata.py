"""Django's ``dumpdata``, for the operator: it exports every partner's rows. Django's command
reads each model's default manager, which is partner-scoped and refuses to run without a
partner, so it runs inside a named unscoped block."""

from django.core.management.commands import dumpdata

from partners.tenancy import unscoped_block


class Command(dumpdata.Command):
    def handle(self, *app_labels, **options):
        with unscoped_block("the operator's dumpdata exports every partner's rows"):
            return super().handle(*app_labels, **options)
