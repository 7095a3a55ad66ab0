"""API permissions: the partner must be active, and the caller must hold the view's scope."""

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from .authentication import request_partner, request_scopes


class PartnerInactive(exceptions.PermissionDenied):
    default_code = "partner_inactive"


class IsActivePartner(BasePermission):
    """Only an active partner's keys and staff get through; pending and suspended ones are
    refused on every endpoint."""

    def has_permission(self, request, view):
        if request.user is None or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        partner = request_partner(request)
        if not partner.is_active:
            raise PartnerInactive(f"The partner organisation is {partner.status}.")
        return True


class HasScope(IsActivePartner):
    """The view names the scope each HTTP method needs in ``required_scopes``, e.g.
    ``{"GET": "records:read", "POST": "records:write"}``; a method without an entry is refused."""

    def has_permission(self, request, view):
        super().has_permission(request, view)
        if request.method not in view._allowed_methods():
            return True  # the view answers 405 Method Not Allowed
        required = getattr(view, "required_scopes", {}).get(request.method)
        if request.method in ("HEAD", "OPTIONS") and required is None:
            required = getattr(view, "required_scopes", {}).get("GET")
        if required is None:
            raise exceptions.PermissionDenied("This operation is not available to partners.")
        if required not in request_scopes(request):
            raise exceptions.PermissionDenied(
                f"This operation needs the '{required}' scope.", code="insufficient_scope"
            )
        return True
