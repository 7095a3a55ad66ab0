"""The plumbing every layer uses, at the bottom of the house: it knows no domain.

- ``api/``: problem+json errors (``problems``), cursor pagination, strict query parameters
  (``params``), bounded request bodies (``bodies``), strict serializer fields (``fields``),
  schema pieces and hooks (``schema``), per-credential rate limits (``throttling``);
- ``streams``: streamed ingest bodies (a JSON array or NDJSON read in bounded memory, hashed as
  read) and ``Idempotency-Key`` handling;
- ``sql``, ``staging``, ``references``: SQL helpers, COPY staging of bulk rows, and the
  statement triggers that check bulk references.

Nothing here imports ``partners``, ``consent``, ``telemetry`` or the core.
"""
