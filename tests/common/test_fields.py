"""Every serializer of the API takes only what it says it takes: its text fields refuse numbers
and its date-time fields refuse a time without a zone or outside the calendar
(clearinghouse/common/api/fields.py). The serializers are found, not listed: every subclass defined in the
project's packages."""

import importlib
import pkgutil

import pytest
from rest_framework import serializers

from clearinghouse.common.api.fields import MomentField, StrictCharField, StrictText

PACKAGES = ("clearinghouse", "partners", "consent", "telemetry")


def project_serializers():
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if ".migrations" in info.name or ".settings" in info.name:
                continue
            if info.name.endswith((".wsgi", ".asgi")):
                continue
            importlib.import_module(info.name)
    found, todo = set(), [serializers.Serializer]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.split(".")[0] in PACKAGES:
                found.add(sub)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def fields_of(serializer, path):
    for name, field in serializer.fields.items():
        where = f"{path}.{name}"
        yield where, field
        inner = getattr(field, "child", None)
        if isinstance(field, serializers.ListSerializer):
            inner = field.child
        if isinstance(inner, serializers.Serializer):
            yield from fields_of(inner, where)
        elif inner is not None:
            yield f"{where}[]", inner
        if isinstance(field, serializers.Serializer):
            yield from fields_of(field, where)


def test_every_text_and_date_time_field_of_every_serializer_is_strict():
    found = project_serializers()
    assert len(found) > 30, "the walk lost the project's serializers"
    loose = []
    for cls in found:
        if issubclass(cls, serializers.ModelSerializer) and not hasattr(cls, "Meta"):
            continue  # a base class, not a serializer of anything
        instance = cls()
        for where, field in fields_of(instance, cls.__qualname__):
            if isinstance(field, serializers.CharField) and not isinstance(field, StrictText):
                loose.append(f"{cls.__module__}.{where}: {type(field).__name__}")
            if isinstance(field, serializers.DateTimeField) and not isinstance(field, MomentField):
                loose.append(f"{cls.__module__}.{where}: {type(field).__name__}")
    assert not loose, "fields that take more than they say:\n" + "\n".join(loose)


@pytest.mark.parametrize("value", [0, 1.5, True, ["a"], {"a": 1}])
def test_a_strict_text_field_refuses_what_is_not_a_string(value):
    field = StrictCharField()
    with pytest.raises(serializers.ValidationError):
        field.run_validation(value)
    assert field.run_validation("0") == "0"


@pytest.mark.parametrize(
    "value", ["2026-01-01T10:00:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"]
)
def test_a_moment_field_refuses_what_is_not_a_moment(value):
    with pytest.raises(serializers.ValidationError):
        MomentField().run_validation(value)


def test_a_past_moment_field_refuses_the_future():
    with pytest.raises(serializers.ValidationError, match="future"):
        MomentField(past=True).run_validation("8999-01-01T00:00:00Z")
    assert MomentField(past=True).run_validation("2020-01-01T00:00:00Z").year == 2020
