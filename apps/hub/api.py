"""REST API of the hub app: the connection (token, status, disconnect), repositories, preferences, the evaluation
gate of a model, and push jobs. Tokens go in, never out: responses show at most a token's last four characters."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import JobSerializer
from apps.core.models import Job
from apps.hub.connections import (
    ReconnectRequired,
    hub_connection_create_with_token,
    hub_connection_delete,
    hub_oauth_available,
    hub_repo_list,
)
from apps.hub.models import HubPreferences
from apps.hub.pushes import ConfirmationRequired, PublishBlocked, hub_preferences_update, hub_publish_gate, hub_push_start
from apps.hub.selectors import ARTIFACTS, hub_connection_get, hub_preferences_get, hub_push_get_for_user, hub_push_list_for_user
from apps.training.selectors import finetune_get_for_user


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class ConnectionSerializer(serializers.Serializer):
    connected = serializers.BooleanField(help_text="An account is connected and its sign-in works.")
    needs_reconnect = serializers.BooleanField(help_text="The sign-in expired and could not be renewed: connect again.")
    username = serializers.CharField(allow_blank=True)
    method = serializers.CharField(allow_blank=True, help_text="oauth or token")
    endpoint = serializers.CharField(allow_blank=True)
    token = serializers.CharField(allow_blank=True, help_text="At most the token's last four characters.")
    expires_at = serializers.DateTimeField(allow_null=True)
    oauth_available = serializers.BooleanField(help_text="This server can sign in with Hugging Face (/hub/connect/).")


def _connection_data(user) -> dict:
    connection = hub_connection_get(user=user)
    return {
        "connected": bool(connection and connection.is_usable),
        "needs_reconnect": bool(connection and not connection.is_usable),
        "username": connection.username if connection else "", "method": connection.method if connection else "",
        "endpoint": connection.endpoint if connection else "",
        "token": connection.token_display if connection else "",
        "expires_at": connection.expires_at if connection else None, "oauth_available": hub_oauth_available(),
    }


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(write_only=True, max_length=2048, help_text="A Hugging Face access token (write role).")


class ConnectionView(APIView):
    """The signed-in user's Hugging Face connection."""

    @extend_schema(responses=ConnectionSerializer)
    def get(self, request):
        return Response(ConnectionSerializer(_connection_data(request.user)).data)

    @extend_schema(responses={204: None}, description="Disconnect: deletes the stored tokens.")
    def delete(self, request):
        connection = hub_connection_get(user=request.user)
        if connection is not None:
            hub_connection_delete(connection=connection)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConnectionTokenView(APIView):
    """Connect with a pasted access token: checked with the Hub (whoami), then stored encrypted."""

    @sensitive_variables()
    @extend_schema(request=TokenSerializer, responses={201: ConnectionSerializer})
    def post(self, request):
        data = TokenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hub_connection_create_with_token(owner=request.user, token=data.validated_data["token"])
        return Response(ConnectionSerializer(_connection_data(request.user)).data, status=status.HTTP_201_CREATED)


class RepoSerializer(serializers.Serializer):
    id = serializers.CharField()
    private = serializers.BooleanField()
    last_modified = serializers.DateTimeField(allow_null=True)
    downloads = serializers.IntegerField()
    likes = serializers.IntegerField()
    url = serializers.CharField()


class RepoListView(APIView):
    """The connected account's model repositories."""

    @extend_schema(responses=RepoSerializer(many=True))
    def get(self, request):
        connection = hub_connection_get(user=request.user)
        if connection is None:
            return Response({"message": "Connect your Hugging Face account first."}, status=status.HTTP_409_CONFLICT)
        try:
            repos = hub_repo_list(connection=connection)
        except ReconnectRequired as exc:
            return Response({"message": " ".join(exc.messages), "code": "reconnect"}, status=status.HTTP_409_CONFLICT)
        # Listing asks the Hub: its refusal or silence is the Hub's failure (502), not a bad request (the handler's 400).
        except DjangoValidationError as exc:
            return Response({"message": " ".join(exc.messages)}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(RepoSerializer(repos, many=True).data)


class PreferencesSerializer(serializers.ModelSerializer):
    class Meta:
        model = HubPreferences
        fields = ["auto_push", "repo_pattern", "auto_private", "gate_threshold", "block_worse"]


class PreferencesView(APIView):
    """Publishing preferences: the automatic push after training, and the evaluation gate."""

    @extend_schema(responses=PreferencesSerializer)
    def get(self, request):
        return Response(PreferencesSerializer(hub_preferences_get(user=request.user)).data)

    @extend_schema(request=PreferencesSerializer, responses=PreferencesSerializer)
    def put(self, request):
        data = PreferencesSerializer(hub_preferences_get(user=request.user), data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        preferences = hub_preferences_update(owner=request.user, **data.validated_data)
        return Response(PreferencesSerializer(preferences).data)


class GateSerializer(serializers.Serializer):
    evaluated = serializers.BooleanField()
    metric = serializers.CharField(allow_blank=True)
    base = serializers.FloatField(allow_null=True)
    tuned = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField()
    block_worse = serializers.BooleanField()
    worse = serializers.BooleanField()
    blocked = serializers.BooleanField()
    needs_confirmation = serializers.BooleanField()
    message = serializers.CharField()


class GateView(APIView):
    """How a fine-tune compares with its base on the held-out evaluation, and whether publishing it needs a
    confirmation (confirm_worse) or is blocked."""

    @extend_schema(responses=GateSerializer)
    def get(self, request, code):
        finetune = finetune_get_for_user(user=request.user, code=code)
        return Response(GateSerializer(hub_publish_gate(finetune=finetune).as_dict()).data)


class PushCreateSerializer(serializers.Serializer):
    finetune = serializers.UUIDField(help_text="The fine-tune to publish.")
    repo = serializers.CharField(max_length=200, help_text="“name” (in your account) or “namespace/name”.")
    what = serializers.ChoiceField(choices=list(ARTIFACTS), required=False, default="",
                                   help_text="adapter (LoRA) or model (full fine-tune) by default; merged or gguf once exported.")
    private = serializers.BooleanField(default=True, help_text="Visibility of a repository this push creates.")
    mode = serializers.ChoiceField(choices=["new", "existing"], default="new",
                                   help_text="new: create the repository (409 if the name is taken); existing: push to one of yours.")
    confirm_worse = serializers.BooleanField(default=False, help_text="Publish even though the model scores worse than its base.")


class PushViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pushes of the signed-in user's models to the Hugging Face Hub; each is a job (follow it at /api/v1/jobs/{code}/)."""

    serializer_class = JobSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Job.objects.none()
        return hub_push_list_for_user(user=self.request.user)

    def get_object(self):
        return hub_push_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(request=PushCreateSerializer, responses={202: JobSerializer},
                   description="Queue a push. 409 when the evaluation gate blocks it (your setting); 400 with code "
                               "confirmation_required when the model is worse than its base and confirm_worse is false.")
    def create(self, request):
        data = PushCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        finetune = finetune_get_for_user(user=request.user, code=values.pop("finetune"))
        # These two are ValidationErrors that clients act on (a 409, and a `code` that asks for confirm_worse), so
        # they are answered here; any other ValidationError is a plain 400 from the API's exception handler.
        try:
            job = hub_push_start(finetune=finetune, **values)
        except PublishBlocked as exc:
            raise Conflict({"message": " ".join(exc.messages), "code": "blocked"})
        except ConfirmationRequired as exc:
            return Response({"message": " ".join(exc.messages), "code": "confirmation_required"},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
