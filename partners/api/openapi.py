"""OpenAPI: how the partner API authenticates (Bearer API keys, staff sessions), registered
with drf-spectacular when the app config loads this module."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "partners.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "chk_<prefix>_<secret>",
            "description": "An API key created by a partner admin in the portal.",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "partners.api.authentication.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
