"""The read-only sharing agreements API: the calling partner's agreements (as either party), with
both parties, the version in force, a pending proposal and the list of versions. Agreements are
proposed, countersigned, suspended and terminated by admins in the portal."""

from rest_framework import mixins, serializers

from clearinghouse.common.api.fields import StrictCharField, StrictModelSerializer

from ..api.base import PartnerScopedViewSet
from ..models import AgreementVersion, Partner, Scope, SharingAgreement
from .selectors import agreement_list


class PartySerializer(StrictModelSerializer):
    # Plain strings, not enums, for the party kind and the version status: both appear in more
    # than one component, and drf-spectacular would name their enums with a hash (a warning that
    # fails ``check --deploy``).
    kind = StrictCharField(read_only=True, help_text="manufacturer or retailer")

    class Meta:
        model = Partner
        fields = ["name", "slug", "kind"]
        read_only_fields = fields


class ClauseSerializer(serializers.Serializer):
    kind = StrictCharField(help_text="A record kind, e.g. sale or warranty_claim.")
    purpose = StrictCharField(help_text="warranty, service, loyalty, … (the consent purpose)")
    direction = serializers.ChoiceField(
        choices=["manufacturer_to_retailer", "retailer_to_manufacturer"],
        help_text="Who shares with whom.",
    )
    fields = serializers.ListField(
        child=StrictCharField(), help_text="The fields the receiver sees."
    )


class VersionSummarySerializer(StrictModelSerializer):
    status = StrictCharField(
        read_only=True, help_text="proposed, active, superseded, rejected or withdrawn"
    )
    proposed_by = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, help_text="The proposing partner's slug."
    )
    purchase_points = serializers.ChoiceField(
        choices=AgreementVersion.PurchasePoints.choices,
        read_only=True,
        help_text="Who credits loyalty points for a purchase: `one` programme (a purchase "
        "credited by both is a discrepancy) or `both`.",
    )

    class Meta:
        model = AgreementVersion
        fields = [
            "number",
            "status",
            "proposed_by",
            "proposed_at",
            "countersigned_at",
            "purchase_points",
            "note",
        ]
        read_only_fields = fields


class VersionSerializer(VersionSummarySerializer):
    clauses = ClauseSerializer(many=True, read_only=True)

    class Meta(VersionSummarySerializer.Meta):
        fields = [*VersionSummarySerializer.Meta.fields, "clauses"]
        read_only_fields = fields


class AgreementSerializer(StrictModelSerializer):
    manufacturer = PartySerializer(read_only=True)
    retailer = PartySerializer(read_only=True)
    suspended_by = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    terminated_by = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    active_version = VersionSerializer(
        read_only=True, allow_null=True, help_text="The countersigned terms; null until then."
    )
    pending_version = VersionSerializer(
        read_only=True,
        allow_null=True,
        help_text="A proposal awaiting the other party's countersignature, if any.",
    )
    versions = VersionSummarySerializer(many=True, read_only=True)

    class Meta:
        model = SharingAgreement
        fields = [
            "id",
            "status",
            "manufacturer",
            "retailer",
            "created_at",
            "suspended_by",
            "suspended_at",
            "terminated_by",
            "terminated_at",
            "active_version",
            "pending_version",
            "versions",
        ]
        read_only_fields = fields


class AgreementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PartnerScopedViewSet):
    """Sharing agreements the calling partner is a party to, newest first. ``status`` is
    ``proposed`` (nothing countersigned yet), ``active``, ``suspended`` or ``terminated``;
    records are shared only under an ``active`` agreement's active version."""

    model = SharingAgreement
    serializer_class = AgreementSerializer
    required_scopes = {"GET": Scope.AGREEMENTS_READ}

    def scoped_queryset(self, partner):
        return agreement_list(partner=partner)
