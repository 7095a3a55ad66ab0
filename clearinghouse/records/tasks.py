from celery import shared_task

from partners.models import Partner

from .announce import records_announce, records_announce_granted
from .csv_upload import upload_process


@shared_task(name="records.process_upload", time_limit=1800, soft_time_limit=1700)
def process_upload(upload_id):
    """Process a portal CSV upload (idempotent: re-running re-counts, creates nothing twice)."""
    upload_process(upload_id=upload_id)


@shared_task(name="records.announce_shared", time_limit=600, soft_time_limit=570)
def announce_shared(submitter_id, refs):
    """``record.shared`` webhooks for records that just arrived (idempotent per chunk)."""
    submitters = Partner.objects.unscoped("the task runs for the submitter id it was given")
    submitter = submitters.filter(pk=submitter_id).first()
    if submitter is None:
        return 0
    return records_announce(submitter=submitter, refs=refs)


@shared_task(name="records.announce_granted", time_limit=600, soft_time_limit=570)
def announce_granted(grant_id):
    """``record.shared`` webhooks for what a consent just given lets its grantee see."""
    return records_announce_granted(grant_id=grant_id)
