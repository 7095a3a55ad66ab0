"""Portal pages for partner organisations: registration, dashboard, staff, API credentials."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.views.generic import FormView, TemplateView, View

from . import selectors, services
from .forms import (
    CredentialForm,
    InvitationAcceptForm,
    InviteForm,
    PortalAuthenticationForm,
    RegistrationForm,
    RoleForm,
    StaffPasswordResetForm,
)
from .models import ApiCredential, Invitation, Membership, Role, Scope
from .portal import PortalMixin, form_errors_from


class TooManyAttemptsMixin:
    """A form refused for being over its limits answers 429 Too Many Requests."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):
            response.status_code = 429
        return response


class SignInView(TooManyAttemptsMixin, auth_views.LoginView):
    """Partner staff sign-in, limited per account and per client address."""

    authentication_form = PortalAuthenticationForm


class PasswordResetView(TooManyAttemptsMixin, auth_views.PasswordResetView):
    """Password-reset e-mails, limited per address and per client address."""

    form_class = StaffPasswordResetForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class RegisterView(FormView):
    template_name = "portal/register.html"
    form_class = RegistrationForm

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            _, user = services.partner_register(
                name=data["name"],
                kind=data["kind"],
                contact_email=data["contact_email"],
                admin_email=data["admin_email"],
                admin_password=data["password1"],
                admin_name=data["admin_name"],
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            self.request,
            "Your organisation is registered. The operator will review it; you will get an e-mail "
            "when it is approved.",
        )
        return redirect("portal:dashboard")


class DashboardView(PortalMixin, TemplateView):
    """The partner's start page. Layers above partners/ add their cards through the
    PORTAL_DASHBOARD_PANELS setting (callables of ``partner`` returning a template and its
    context), so that this view never imports them."""

    template_name = "portal/dashboard.html"
    allow_inactive = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overview"] = selectors.partner_overview(partner=self.partner)
        context["activity"] = selectors.partner_activity(partner=self.partner, limit=8)
        if self.partner.is_active:
            context["panels"] = [
                import_string(path)(partner=self.partner)
                for path in settings.PORTAL_DASHBOARD_PANELS
            ]
        return context


class ActivityView(PortalMixin, TemplateView):
    template_name = "portal/activity.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["activity"] = selectors.partner_activity(partner=self.partner, limit=200)
        return context


class StaffListView(PortalMixin, TemplateView):
    template_name = "portal/staff_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["staff"] = selectors.staff_list(partner=self.partner)
        context["invitations"] = selectors.open_invitations(partner=self.partner)
        context["roles"] = Role.choices
        return context


class StaffInviteView(PortalMixin, FormView):
    template_name = "portal/staff_invite.html"
    form_class = InviteForm
    required_role = Role.ADMIN

    def form_valid(self, form):
        try:
            invitation = services.staff_invite(
                partner=self.partner,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=self.request.user,
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"Invitation sent to {invitation.email}.")
        return redirect("portal:staff")


class MembershipUpdateView(PortalMixin, View):
    """POST: change a colleague's role, or remove them (``action=remove``)."""

    required_role = Role.ADMIN

    def post(self, request, pk):
        membership = self.get_scoped_or_404(Membership, pk=pk)
        try:
            if request.POST.get("action") == "remove":
                services.membership_remove(membership=membership, actor=request.user)
                messages.success(request, f"{membership.user.email} was removed.")
            else:
                form = RoleForm(request.POST)
                if not form.is_valid():
                    messages.error(request, "Choose a valid role.")
                    return redirect("portal:staff")
                services.membership_change_role(
                    membership=membership, role=form.cleaned_data["role"], actor=request.user
                )
                messages.success(
                    request, f"{membership.user.email} is now {form.cleaned_data['role']}."
                )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("portal:staff")


class InvitationRevokeView(PortalMixin, View):
    required_role = Role.ADMIN

    def post(self, request, pk):
        invitation = self.get_scoped_or_404(Invitation, pk=pk)
        services.invitation_revoke(invitation=invitation, actor=request.user)
        messages.success(request, f"The invitation to {invitation.email} was withdrawn.")
        return redirect("portal:staff")


class InvitationAcceptView(FormView):
    """The page behind an invitation link: choose a password and join."""

    template_name = "portal/invitation_accept.html"
    form_class = InvitationAcceptForm

    def dispatch(self, request, *args, **kwargs):
        self.invitation = selectors.invitation_from_token(kwargs["token"])
        if self.invitation is None:
            return render(request, "portal/invitation_invalid.html", status=404)
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "email": self.invitation.email}

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "invitation": self.invitation}

    def form_valid(self, form):
        try:
            user = services.invitation_accept(
                invitation=self.invitation,
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(self.request, f"Welcome to {self.invitation.partner.name}.")
        return redirect("portal:dashboard")


class CredentialListView(PortalMixin, TemplateView):
    template_name = "portal/credential_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["credentials"] = selectors.credential_list(partner=self.partner)
        return context


class CredentialCreateView(PortalMixin, FormView):
    """Issue a key. The key is rendered in the response to the POST itself and kept nowhere."""

    template_name = "portal/credential_form.html"
    form_class = CredentialForm
    required_role = Role.ADMIN

    def get_initial(self):
        return {"scopes": [Scope.PARTNER_READ, Scope.RECORDS_READ]}

    def form_valid(self, form):
        try:
            issued = services.credential_create(
                partner=self.partner,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=self.request.user,
                expires_at=form.expires_at(),
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
            return self.form_invalid(form)
        response = render(
            self.request,
            "portal/credential_created.html",
            {
                "credential": issued.credential,
                "key": issued.key,
                "partner": self.partner,
                "api_url": self.request.build_absolute_uri(reverse("api:partner-me")),
            },
        )
        response["Cache-Control"] = "no-store"
        return response


class CredentialRevokeView(PortalMixin, View):
    required_role = Role.ADMIN

    def post(self, request, pk):
        credential = self.get_scoped_or_404(ApiCredential, pk=pk)
        services.credential_revoke(credential=credential, actor=request.user)
        messages.success(request, f"The key “{credential.name}” was revoked.")
        return redirect("portal:credentials")
