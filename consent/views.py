"""The partner portal's Notices page: GDPR Art. 19 notices addressed to the partner (customers
who withdrew a consent it received data under, or were erased). Staff confirm each one once the
data is no longer used, or erased; the customer sees the confirmation in their dashboard."""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.generic import TemplateView, View

from partners.models import Role
from partners.portal import PortalMixin

from .models import RecipientNotice
from .notices import describe_delay, notice_acknowledge, partner_notices


class NoticesView(PortalMixin, TemplateView):
    template_name = "portal/notices.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        notices = list(partner_notices(partner=self.partner)[:200])
        for notice in notices:
            if notice.acknowledged_at:
                notice.delay = describe_delay(notice.acknowledgement_delay)
        context["waiting"] = [n for n in notices if not n.acknowledged_at]
        context["confirmed"] = [n for n in notices if n.acknowledged_at]
        return context


class NoticeConfirmView(PortalMixin, View):
    required_role = Role.ANALYST

    def post(self, request, pk):
        notice = self.get_scoped_or_404(RecipientNotice, pk=pk)
        notice_acknowledge(notice=notice, via=RecipientNotice.Via.PORTAL)
        messages.success(request, "Confirmed. The customer sees your confirmation.")
        return redirect("notices:list")
