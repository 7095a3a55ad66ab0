"""Operator views of the customer side: read-only, never showing an identifier in clear."""

from django.contrib import admin, messages

from partners.admin import OperatorView

from .ledger import ledger_verify
from .models import AccessLogEntry, ConsentGrant, Customer, LedgerEntry, Receipt


class ReadOnlyAdmin(OperatorView, admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "erased_at"]
    list_filter = ["erased_at"]
    search_fields = ["id"]


@admin.register(ConsentGrant)
class ConsentGrantAdmin(ReadOnlyAdmin):
    list_display = [
        "customer_id",
        "grantee",
        "purpose",
        "source",
        "granted_at",
        "expires_at",
        "revoked_at",
        "ended_by",
    ]
    list_filter = ["purpose", "source", "ended_by", "grantee"]


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "customer_id", "issued_at", "key_id"]
    list_filter = ["kind"]


@admin.register(AccessLogEntry)
class AccessLogAdmin(ReadOnlyAdmin):
    list_display = ["accessed_at", "partner", "customer_id", "channel", "record_count"]
    list_filter = ["channel", "partner"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "recorded_at", "kind", "customer_ref", "partner_ref", "hash"]
    list_filter = ["kind"]
    actions = ["verify"]

    @admin.action(description="Verify the whole ledger's hash chain")
    def verify(self, request, queryset):
        checked, problems = ledger_verify()
        if problems:
            self.message_user(
                request, f"NOT intact: {'; '.join(map(str, problems[:5]))}", messages.ERROR
            )
        else:
            self.message_user(request, f"Intact: {checked} entries verified.", messages.SUCCESS)
