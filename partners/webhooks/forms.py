"""Portal forms for webhook endpoints."""

from django import forms
from django.core.exceptions import ValidationError

from ..models import WebhookEventType
from .transport import URL_MAX_LENGTH, validate_endpoint_url


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="Receiver address",
        max_length=URL_MAX_LENGTH,
        widget=forms.URLInput(attrs={"placeholder": "https://erp.example.com/hooks/clearinghouse"}),
        help_text="HTTPS, without user name or password: every delivery is signed instead.",
    )
    description = forms.CharField(
        label="Description (optional)",
        max_length=200,
        required=False,
        help_text="What receives the events, e.g. 'warranty desk integration'.",
    )
    event_types = forms.MultipleChoiceField(
        label="Events to receive",
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean_url(self):
        try:
            return validate_endpoint_url(self.cleaned_data["url"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict.get("url", exc.messages)) from exc
