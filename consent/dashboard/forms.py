from django import forms

from ..catalogue import PURPOSES


class SignInForm(forms.Form):
    email = forms.EmailField(
        label="Your e-mail address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class ConsentChangeForm(forms.Form):
    partner = forms.UUIDField()
    purpose = forms.ChoiceField(choices=[(k, k) for k in PURPOSES])
    action = forms.ChoiceField(choices=[("grant", "grant"), ("revoke", "revoke")])


class EraseForm(forms.Form):
    confirm = forms.CharField(
        label="Type ERASE to confirm",
        max_length=10,
        help_text="This cannot be undone.",
    )

    def clean_confirm(self):
        if self.cleaned_data["confirm"].strip() != "ERASE":
            raise forms.ValidationError("Type ERASE, in capitals, to confirm.")
        return "ERASE"
