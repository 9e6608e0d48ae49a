"""Provider endpoints of the REST API: saved chat endpoints (keys write-only), privacy patterns, and the
read-only log of external calls. Other users' objects answer 404."""
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.providers.models import ExternalCallAudit, PiiPattern, ProviderCredential
from apps.providers.selectors import (
    external_call_audit_get_for_user,
    external_call_audit_list_for_user,
    pii_pattern_get_for_user,
    pii_pattern_list_for_user,
    provider_credential_get_for_user,
    provider_credential_list_for_user,
)
from apps.providers.services import (
    pii_pattern_create,
    pii_pattern_delete,
    provider_credential_create,
    provider_credential_delete,
    provider_credential_test,
    provider_credential_update,
)


class ProviderCredentialSerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=4096,
                                    style={"input_type": "password"},
                                    help_text="Stored encrypted and never returned; `key_hint` shows its last characters.")
    key_hint = serializers.CharField(source="key_display", read_only=True)
    base_url = serializers.CharField(max_length=500)

    class Meta:
        model = ProviderCredential
        fields = ["code", "name", "base_url", "model", "api_key", "key_hint", "created_at", "updated_at"]
        read_only_fields = ["code", "key_hint", "created_at", "updated_at"]


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()


class ProviderCredentialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                                viewsets.GenericViewSet):
    """The signed-in user's OpenAI-compatible chat endpoints. Keys can be written, never read back."""

    serializer_class = ProviderCredentialSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ProviderCredential.objects.none()
        return provider_credential_list_for_user(user=self.request.user)

    def get_object(self):
        return provider_credential_get_for_user(user=self.request.user, code=self.kwargs["code"])

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credential = provider_credential_create(owner=request.user, **serializer.validated_data)
        return Response(self.get_serializer(credential).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, code=None):
        """Change the name, base URL, model or key (an empty `api_key` removes the key). A base URL on another origin
        (scheme, host or port) needs `api_key` again when a key is saved: the key only goes where it was saved for."""
        credential = self.get_object()
        serializer = self.get_serializer(credential, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        credential = provider_credential_update(credential=credential, **serializer.validated_data)
        return Response(self.get_serializer(credential).data)

    def perform_destroy(self, instance):
        provider_credential_delete(credential=instance)

    @extend_schema(request=None, responses=ConnectionTestSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, code=None):
        """Send one tiny chat request to the endpoint (recorded in the audit log) and report how it went."""
        ok, message = provider_credential_test(credential=self.get_object())
        return Response({"ok": ok, "message": message})


class PiiPatternSerializer(serializers.ModelSerializer):
    class Meta:
        model = PiiPattern
        fields = ["code", "label", "pattern", "created_at"]
        read_only_fields = ["code", "created_at"]


class PiiPatternViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                        viewsets.GenericViewSet):
    """The signed-in user's own PII patterns, applied with the built-in ones when scrubbing is on."""

    serializer_class = PiiPatternSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PiiPattern.objects.none()
        return pii_pattern_list_for_user(user=self.request.user)

    def get_object(self):
        return pii_pattern_get_for_user(user=self.request.user, code=self.kwargs["code"])

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pattern = pii_pattern_create(owner=request.user, **serializer.validated_data)
        return Response(self.get_serializer(pattern).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        pii_pattern_delete(pattern=instance)


class ExternalCallAuditSerializer(serializers.ModelSerializer):
    job = serializers.SlugRelatedField(slug_field="code", read_only=True)
    credential = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = ExternalCallAudit
        fields = ["code", "created_at", "purpose", "provider", "credential", "endpoint", "model", "characters_sent",
                  "attempts", "ok", "status_code", "error", "pii_replacements", "duration_ms", "job"]
        read_only_fields = fields


class ExternalCallAuditViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every request that sent the signed-in user's text to an external endpoint, newest first.
    Filter with `?job=<job code>` or `?purpose=generate|judge|test`."""

    serializer_class = ExternalCallAuditSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExternalCallAudit.objects.none()
        calls = external_call_audit_list_for_user(user=self.request.user)
        if job := self.request.query_params.get("job"):
            try:
                calls = calls.filter(job__code=job)
            except DjangoValidationError:
                calls = calls.none()
        if purpose := self.request.query_params.get("purpose"):
            calls = calls.filter(purpose=purpose)
        return calls

    def get_object(self):
        return external_call_audit_get_for_user(user=self.request.user, code=self.kwargs["code"])


class _DefaultTrueBooleanField(serializers.BooleanField):
    # DRF reads a boolean missing from form-encoded data as False (an unticked checkbox); here a missing
    # field must mean the default, so scrubbing stays on unless a client turns it off.
    default_empty_html = serializers.empty


class GenerateOptionsSerializer(serializers.Serializer):
    """The options of POST /api/v1/datasets/{code}/generate/ (all optional)."""

    backend = serializers.ChoiceField(choices=["extractive", "endpoint", "local_model"], required=False,
                                      help_text="Default: extractive, or the site's endpoint when one is configured.")
    provider = serializers.CharField(required=False, allow_blank=True,
                                     help_text="For `endpoint`: a provider's code, or `default` for the site's endpoint.")
    model_path = serializers.CharField(required=False, allow_blank=True, max_length=500,
                                       help_text="For `local_model`: a Hub id or a folder on the GPU worker.")
    task_description = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                             help_text="What the fine-tuned model should do. Default: the dataset's description.")
    num_pairs = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10_000,
                                         help_text="Pairs wanted, spread over the chunks.")
    summary = serializers.CharField(required=False, allow_blank=True, max_length=8000,
                                    help_text="Optional document summary sent as context.")
    scrub_pii = _DefaultTrueBooleanField(required=False, default=True,
                                         help_text="Replace personal data with placeholders before sending (default on).")
