from rest_framework import serializers

from clearinghouse.common.api.fields import StrictCharField, StrictModelSerializer

from ..models import ApiCredential, Partner


class PartnerSerializer(StrictModelSerializer):
    class Meta:
        model = Partner
        fields = ["id", "name", "slug", "kind", "status", "created_at"]
        read_only_fields = fields


class CredentialSerializer(StrictModelSerializer):
    status = StrictCharField(read_only=True)

    class Meta:
        model = ApiCredential
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "status",
            "rate_limit_per_minute",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields


class PartnerMeSerializer(serializers.Serializer):
    partner = PartnerSerializer()
    credential = CredentialSerializer(allow_null=True)
    scopes = serializers.ListField(child=StrictCharField())


class RevokeSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True)
