from datetime import datetime, time

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils import timezone

from . import sign_in_limits
from .models import Partner, Role, Scope, User
from .selectors import membership_for_user

# What the e-mail columns hold (a form's EmailField would take the 320 characters RFC 5321 allows).
EMAIL_MAX = User._meta.get_field("email").max_length


def client_ip(request):
    return request.META.get("REMOTE_ADDR", "") if request else ""


class ThrottledSignInMixin:
    """Refuses sign-in past the failed-attempt limits (``sign_in_limits``); ``throttled`` tells
    the view to answer 429."""

    throttled = False

    def clean(self):
        email, ip = self.cleaned_data.get("username") or "", client_ip(self.request)
        if sign_in_limits.sign_in_blocked(email=email, ip=ip):
            self.throttled = True
            raise forms.ValidationError(
                sign_in_limits.SIGN_IN_REFUSED.format(minutes=sign_in_limits.window_minutes()),
                code="throttled",
            )
        try:
            data = super().clean()
        except forms.ValidationError:
            sign_in_limits.sign_in_failed(email=email, ip=ip)
            raise
        sign_in_limits.sign_in_succeeded(email=email)
        return data


class OperatorAuthenticationForm(ThrottledSignInMixin, AdminAuthenticationForm):
    """The operator admin's sign-in, under the same limits as the portal's."""


class StaffPasswordResetForm(PasswordResetForm):
    """Password reset, limited per address and per client address (``request`` is passed by
    the view)."""

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.throttled = False

    def clean(self):
        data = super().clean()
        email = data.get("email")
        if email and not sign_in_limits.password_reset_allowed(
            email=email, ip=client_ip(self.request)
        ):
            self.throttled = True
            raise forms.ValidationError(sign_in_limits.RESET_REFUSED, code="throttled")
        return data


class PortalAuthenticationForm(ThrottledSignInMixin, AuthenticationForm):
    """Sign-in that refuses the staff of a suspended partner."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "suspended": "Your organisation is suspended. Contact the clearinghouse operator.",
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        membership = membership_for_user(user)
        if membership and membership.partner.status == Partner.Status.SUSPENDED:
            raise forms.ValidationError(self.error_messages["suspended"], code="suspended")


class PasswordPairMixin:
    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            email = data.get("admin_email") or getattr(self, "email", "")
            try:
                password_validation.validate_password(p1, User(email=email))
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class RegistrationForm(PasswordPairMixin, forms.Form):
    name = forms.CharField(label="Organisation name", max_length=200)
    kind = forms.ChoiceField(
        label="We are a", choices=Partner.Kind.choices, widget=forms.RadioSelect
    )
    contact_email = forms.EmailField(label="Organisation contact e-mail", max_length=EMAIL_MAX)
    admin_name = forms.CharField(label="Your name", max_length=150)
    admin_email = forms.EmailField(label="Your e-mail (you sign in with it)", max_length=EMAIL_MAX)
    password1 = forms.CharField(
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_admin_email(self):
        email = User.objects.normalize_email(self.cleaned_data["admin_email"])
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists.")
        return email


class InvitationAcceptForm(PasswordPairMixin, forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150)
    password1 = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, email="", **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=EMAIL_MAX)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class CredentialForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What uses this key, e.g. 'ERP nightly export'."
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Give a system only what it needs.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on (optional)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day and day <= timezone.localdate():
            raise forms.ValidationError("Choose a date after today.")
        return day

    def expires_at(self):
        day = self.cleaned_data.get("expires_on")
        if not day:
            return None
        return timezone.make_aware(datetime.combine(day, time.min))
