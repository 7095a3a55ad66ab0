"""API plumbing shared by every app's API (see ``clearinghouse.common``)."""
