"""Model instances from SQL written out by hand, for the few hot reads where composing the query
with the ORM costs more than running it: ``columns`` names a model's concrete columns under a
table alias, and ``take`` builds the instance from the front of a row selected that way."""

import functools

from django.db import DEFAULT_DB_ALIAS


@functools.cache
def columns(model, alias):
    """``alias.column, ...`` for every concrete field of ``model``, in ``take``'s order."""
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


@functools.cache
def _attnames(model):
    return tuple(field.attname for field in model._meta.concrete_fields)


def take(model, row):
    """(an instance of ``model`` from the front of ``row``, the rest of ``row``)."""
    names = _attnames(model)
    return model.from_db(DEFAULT_DB_ALIAS, names, row[: len(names)]), row[len(names) :]
