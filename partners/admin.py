"""Operator tools: approve and suspend partners, suspend credentials, read the audit trail."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from . import services
from .models import (
    AgreementEvent,
    AgreementVersion,
    ApiCredential,
    Invitation,
    Membership,
    Partner,
    PartnerEvent,
    SharingAgreement,
    User,
)
from .tenancy import PartnerScopedQuerySet, unscoped_block


class OperatorView:
    """For the operator's admin pages (model admins and inlines): the operator approves,
    suspends and audits every partner, so these pages read every partner's rows. Each
    partner-scoped read they make says so: their own querysets, the choices of a foreign key,
    and the list filters, which Django builds from the default manager."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if isinstance(queryset, PartnerScopedQuerySet):
            return queryset.unscoped("the operator's admin sees every partner's rows")
        return queryset

    def get_field_queryset(self, db, db_field, request):
        queryset = super().get_field_queryset(db, db_field, request)
        scoped = db_field.remote_field.model._default_manager.using(db)
        if isinstance(scoped, PartnerScopedQuerySet):
            # Django falls back to the default manager when the related admin sets no order.
            return (queryset if queryset is not None else scoped).unscoped(
                "the operator's admin offers every partner as a choice"
            )
        return queryset

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # An inline formset checks each row's id against its model's default manager.
        with unscoped_block("the operator's admin edits any partner's rows"):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_changelist_instance(self, request):
        # A related-field list filter reads its choices from the related model's default
        # manager, inside Django: every partner is a choice on the operator's list.
        with unscoped_block("the operator's admin filters by any partner"):
            return super().get_changelist_instance(request)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    list_filter = ["is_staff", "is_active"]
    filter_horizontal = ["groups"]


class MembershipInline(OperatorView, admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Partner)
class PartnerAdmin(OperatorView, admin.ModelAdmin):
    list_display = ["name", "kind", "status", "contact_email", "created_at", "status_changed_at"]
    list_filter = ["status", "kind"]
    search_fields = ["name", "slug", "contact_email"]
    readonly_fields = ["status", "status_changed_at", "created_at"]
    inlines = [MembershipInline]
    actions = ["approve", "suspend"]

    @admin.action(description="Approve the selected partners (e-mails them)")
    def approve(self, request, queryset):
        for partner in queryset:
            services.partner_approve(partner=partner, actor=request.user)
        self.message_user(request, f"Approved {queryset.count()} partner(s).", messages.SUCCESS)

    @admin.action(description="Suspend the selected partners (staff and keys refused)")
    def suspend(self, request, queryset):
        for partner in queryset:
            services.partner_suspend(partner=partner, actor=request.user, reason="operator action")
        self.message_user(request, f"Suspended {queryset.count()} partner(s).", messages.WARNING)


@admin.register(ApiCredential)
class ApiCredentialAdmin(OperatorView, admin.ModelAdmin):
    list_display = [
        "name",
        "partner",
        "prefix",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["partner"]
    search_fields = ["name", "prefix", "partner__name"]
    readonly_fields = [f.name for f in ApiCredential._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are issued by partner admins, so that only they ever see the secret

    @admin.action(description="Revoke the selected credentials")
    def revoke(self, request, queryset):
        for credential in queryset:
            services.credential_revoke(credential=credential, actor=request.user)
        self.message_user(request, f"Revoked {queryset.count()} credential(s).", messages.WARNING)


@admin.register(Invitation)
class InvitationAdmin(OperatorView, admin.ModelAdmin):
    list_display = [
        "email",
        "partner",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["partner"]
    readonly_fields = [f.name for f in Invitation._meta.fields]


@admin.register(PartnerEvent)
class PartnerEventAdmin(OperatorView, admin.ModelAdmin):
    list_display = ["created_at", "partner", "action", "actor", "credential"]
    list_filter = ["action", "partner"]
    readonly_fields = [f.name for f in PartnerEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(OperatorView, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AgreementVersionInline(ReadOnlyInline):
    model = AgreementVersion
    fields = [
        "number",
        "status",
        "proposed_by",
        "proposed_by_user",
        "proposed_at",
        "countersigned_by_user",
        "countersigned_at",
        "closed_at",
        "clauses",
        "note",
    ]
    readonly_fields = fields


class AgreementEventInline(ReadOnlyInline):
    model = AgreementEvent
    fields = ["created_at", "partner", "actor", "action", "version", "detail"]
    readonly_fields = fields


@admin.register(SharingAgreement)
class SharingAgreementAdmin(OperatorView, admin.ModelAdmin):
    """Read-only: agreements change only when a party's admin acts in the portal, so that each
    change is countersigned and recorded."""

    list_display = ["manufacturer", "retailer", "status", "created_at", "terminated_at"]
    list_filter = ["status"]
    search_fields = ["manufacturer__name", "retailer__name"]
    list_select_related = ["manufacturer", "retailer"]
    readonly_fields = [f.name for f in SharingAgreement._meta.fields]
    inlines = [AgreementVersionInline, AgreementEventInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
