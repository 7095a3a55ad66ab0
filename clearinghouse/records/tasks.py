from celery import shared_task

from .csv_upload import upload_process


@shared_task(name="records.process_upload", time_limit=1800, soft_time_limit=1700)
def process_upload(upload_id):
    """Process a portal CSV upload (idempotent: re-running re-counts, creates nothing twice)."""
    upload_process(upload_id=upload_id)
