"""Who is calling the API: a partner system with a Bearer key, or signed-in staff on the
browsable API. Either way the request ends up with one partner (``request_partner``)."""

from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)

from ..models import ApiCredential, Partner, scopes_for_role
from ..selectors import membership_for_user
from ..services import CredentialRefused, credential_authenticate


@dataclass(frozen=True)
class ApiClient:
    """The principal of a key-authenticated request (``request.user``)."""

    credential: ApiCredential

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    @property
    def partner(self):
        return self.credential.partner

    @property
    def pk(self):
        return self.credential.pk

    def __str__(self):
        return f"credential {self.credential.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer chk_<prefix>_<secret>``."""

    keyword = "bearer"

    def authenticate(self, request):
        header = get_authorization_header(request)
        if not header:
            return None
        try:
            parts = header.decode("ascii").split()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The Authorization header is not ASCII.") from exc
        if not parts or parts[0].lower() != self.keyword:
            raise exceptions.AuthenticationFailed(
                "Unsupported Authorization scheme: send 'Authorization: Bearer <key>'."
            )
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: send 'Authorization: Bearer <key>'."
            )
        try:
            credential = credential_authenticate(key=parts[1])
        except CredentialRefused as refused:
            raise exceptions.AuthenticationFailed(refused.message, code=refused.code) from refused
        return ApiClient(credential), credential

    def authenticate_header(self, request):
        return 'Bearer realm="clearinghouse"'


class StaffSessionAuthentication(SessionAuthentication):
    """Partner staff signed in to the portal may use the browsable API with their role's scopes.
    Operators without a partner are not API users."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        if membership_for_user(user) is None:
            return None
        return user, None


def request_partner(request):
    """The partner on whose behalf this API request acts; fails closed."""
    user = request.user
    if isinstance(user, ApiClient):
        return user.partner
    membership = getattr(user, "membership", None) if user is not None else None
    if membership is None:
        raise exceptions.NotAuthenticated()
    return membership.partner


def request_scopes(request):
    user = request.user
    if isinstance(user, ApiClient):
        return frozenset(user.credential.scopes)
    membership = getattr(user, "membership", None) if user is not None else None
    return scopes_for_role(membership.role) if membership else frozenset()


def request_actor(request):
    """(user, credential) for audit rows: one of them is set."""
    user = request.user
    if isinstance(user, ApiClient):
        return None, user.credential
    return user, None


__all__ = ["ApiClient", "ApiKeyAuthentication", "Partner", "StaffSessionAuthentication"]
