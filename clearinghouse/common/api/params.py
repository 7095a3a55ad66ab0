"""Query parameters of the API's lists. A filter given with a value its schema does not allow is
a 400 problem, never silently ignored: ``?status=`` or ``?mine=1`` is a client's bug it should
hear about, not a request for everything."""

import re
import uuid

from rest_framework import exceptions


def choice_param(request, name, choices):
    """The value of query parameter ``name`` when it is one of ``choices``; None when absent."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if value not in choices:
        raise exceptions.ValidationError({name: f"must be one of {', '.join(choices)}"})
    return value


def boolean_param(request, name):
    """True or False for ``true``/``false``; None when absent."""
    value = choice_param(request, name, ("true", "false"))
    return None if value is None else value == "true"


SERIAL_WHAT = "1-64 letters, digits or . _ / -, starting with a letter or digit"


def pattern_param(request, name, pattern, what):
    """The value of query parameter ``name`` when it matches ``pattern`` (a regular expression
    the OpenAPI document states too) whole; None when absent."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if not re.fullmatch(pattern.strip("^$"), value):
        raise exceptions.ValidationError({name: f"must be {what}"})
    return value


def is_uuid(value) -> bool:
    """Whether ``value`` reads as a UUID (an id from a URL or a query is checked before it is
    looked up, so that a malformed one is a missing object, not a database error)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
