"""The base of every portal page for partner staff.

``PortalMixin`` signs the user in, finds their partner, refuses pending and suspended partners'
staff (except on pages that explain that state), checks the role, and offers ``scoped(Model)``:
the model's queryset restricted to the partner, so that a foreign object is a 404.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, render

from .models import Role
from .selectors import membership_for_user

ROLE_RANK = {Role.VIEWER: 0, Role.ANALYST: 1, Role.ADMIN: 2}


class PortalMixin(LoginRequiredMixin):
    #: the least role that may use the page: viewer, analyst (changes data) or admin
    required_role = Role.VIEWER
    #: pages that explain a pending or suspended state may be shown to such partners
    allow_inactive = False

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.membership = membership_for_user(request.user)
        if self.membership is None:
            return render(request, "portal/no_membership.html", status=403)
        self.partner = self.membership.partner
        if not self.partner.is_active and not self.allow_inactive:
            return render(request, "portal/partner_inactive.html", status=403)
        if ROLE_RANK[self.membership.role] < ROLE_RANK[self.required_role]:
            return render(
                request,
                "portal/forbidden.html",
                {"required_role": Role(self.required_role).label},
                status=403,
            )
        return super().dispatch(request, *args, **kwargs)

    def scoped(self, model):
        return model.objects.for_partner(self.partner)

    def get_scoped_or_404(self, model, **lookup):
        return get_object_or_404(self.scoped(model), **lookup)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(partner=self.partner, membership=self.membership)
        return context


def form_errors_from(form, exc):
    """Put a service's ValidationError on the form: on its field when the form has one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
