from django.apps import AppConfig


class ClearinghouseConfig(AppConfig):
    """The project package as an app: project-wide management commands (the demo)."""

    name = "clearinghouse"
    verbose_name = "Clearinghouse"
