"""Account endpoints of the REST API: the current user and their personal API tokens."""
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.accounts.models import ApiToken, User
from apps.accounts.selectors import api_token_get_for_user, api_token_list_for_user
from apps.accounts.services import api_token_create, api_token_revoke


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "date_joined"]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["code", "name", "prefix", "created_at", "last_used_at"]
        read_only_fields = ["code", "prefix", "created_at", "last_used_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The full token. It is shown this once and never again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class MeView(generics.RetrieveAPIView):
    """The signed-in user."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                      viewsets.GenericViewSet):
    """The signed-in user's personal API tokens. Other users' tokens answer 404."""

    serializer_class = ApiTokenSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # Schema generation runs without a signed-in user; the model is all it needs.
            return ApiToken.objects.none()
        return api_token_list_for_user(user=self.request.user)

    def get_object(self):
        return api_token_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(request=ApiTokenSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request):
        """Creates a token. The answer holds the full token in `token`: store it, it is never shown again."""
        serializer = ApiTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token, secret = api_token_create(user=request.user, name=serializer.validated_data["name"])
        except DjangoValidationError as exc:
            # Caught here rather than left to the API's exception handler: the body also puts the messages under
            # the `name` field, as a serializer's own error on that field would.
            raise ValidationError({"name": exc.messages, "message": " ".join(exc.messages)})
        token.token = secret
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        api_token_revoke(token=instance)
