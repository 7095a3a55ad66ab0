"""Portal form for a service rule: the conditions as JSON, checked by the service."""

from django import forms

from clearinghouse.common.api.bodies import BodyError, loads

from .models import ServiceRule


class RuleForm(forms.Form):
    model_name = forms.CharField(max_length=100)
    name = forms.CharField(max_length=100)
    issue = forms.CharField(max_length=200, help_text="Plain text the service request carries")
    prompt_text = forms.CharField(
        max_length=300, required=False, help_text="What the customer is asked (optional)"
    )
    operator = forms.ChoiceField(choices=ServiceRule.Operator.choices)
    conditions = forms.CharField(
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text='e.g. [{"kind": "threshold", "metric": "drain_pump_current_a", "op": ">", '
        '"value": 1.5, "minutes": 60}]',
    )

    def clean_conditions(self):
        """JSON within the bounds of every body (clearinghouse/common/api/bodies.py): 5,000 nested brackets
        fit in the field and would exhaust the standard parser's recursion."""
        try:
            return loads(self.cleaned_data["conditions"].encode())
        except BodyError as exc:
            where = f" (at {exc.path})" if exc.path else ""
            raise forms.ValidationError(f"This {exc.message}{where}.") from exc
