"""Process set-up shared by the web entry points and the Celery worker."""

import gc


def settle():
    """Call once the application is loaded: everything loaded so far lives as long as the
    process, so it moves to the collector's permanent generation. Otherwise every full collection
    walks Django's, DRF's and psycopg's own objects again; during a 10,000-record batch, which
    keeps tens of thousands of young objects alive, that walking took a quarter of the worker's
    CPU. Freezing also keeps forked processes from touching (copying) the parent's pages."""
    gc.freeze()
