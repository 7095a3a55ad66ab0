"""The customer's privacy dashboard under ``/me/``: passwordless sign-in, what is held about
them and by whom, consents, receipts, the access log, export and erasure; and the public keys
that verify its receipts. The partner portal's consent pages are ``consent.views``."""
