"""The base of every partner-facing API view.

``get_queryset`` is final: it asks the subclass for ``scoped_queryset(partner)`` with the
request's partner, so no view can forget the tenancy restriction. A subclass that defines
``get_queryset`` itself is refused when its module is imported.
"""

from rest_framework import exceptions, viewsets
from rest_framework.views import APIView

from .authentication import request_partner
from .permissions import HasScope


class RefusesNul:
    """PostgreSQL cannot store or compare text with a NUL character: a query parameter or path
    segment holding one would fail in the database (a 500). Refuse it up front as a 400, after
    authentication (so an anonymous caller still gets its 401)."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        given = [*request.query_params.lists(), *((k, [str(v)]) for k, v in kwargs.items())]
        for name, values in given:
            if "\x00" in name or any("\x00" in value for value in values):
                raise exceptions.ValidationError({name: "must not contain a NUL character"})


class PartnerScopedViewSet(RefusesNul, viewsets.GenericViewSet):
    """Lists and details restricted to the calling partner. Set ``model`` (queried through its
    ``for_partner``) or override ``scoped_queryset``. Foreign objects are 404s."""

    permission_classes = [HasScope]
    required_scopes: dict = {}
    model = None
    # A UUID: anything else in the place of an id is a 404 from the URL conf, not a 400 from
    # the database's refusal to compare it with a uuid column.
    lookup_value_regex = (
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} overrides get_queryset; implement scoped_queryset(partner) instead"
            )

    @property
    def partner(self):
        return request_partner(self.request)

    def scoped_queryset(self, partner):
        return self.model.objects.for_partner(partner)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request partner
            return self.model.objects.none()
        return self.scoped_queryset(self.partner)


class PartnerAPIView(RefusesNul, APIView):
    """A single-resource endpoint acting for the calling partner."""

    permission_classes = [HasScope]
    required_scopes: dict = {}

    @property
    def partner(self):
        return request_partner(self.request)
