from django import forms
from django.contrib.auth import forms as auth_forms

from apps.accounts.models import User


def _normalise_email(value: str) -> str:
    # Emails are stored lower-cased (User.save), so "Alice@Example.com" must find "alice@example.com".
    return (value or "").strip().lower()


class SignInForm(auth_forms.AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        **auth_forms.AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account. Check both, or reset your password.",
        "inactive": "This account is disabled. Ask the administrator of this server.",
    }

    def clean_username(self):
        return _normalise_email(self.cleaned_data.get("username"))


class SignUpForm(auth_forms.BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)
        labels = {"email": "Email"}
        help_texts = {"email": "You sign in with it, and password reset links go to it."}
        widgets = {"email": forms.EmailInput(attrs={"autocomplete": "email"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].label = "Password"
        self.fields["password2"].label = "Repeat the password"
        self.fields["password2"].help_text = "Type it again, to be sure there is no typo."

    def clean_email(self):
        email = _normalise_email(self.cleaned_data.get("email"))
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this email already exists. Sign in instead, or reset your password if you forgot it."
            )
        return email


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Token name",
        help_text="What will use this token, such as “laptop script” or “CI”. Only you see it.",
    )
