"""Job endpoints of the REST API and the API's error format."""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.template.defaultfilters import filesizeformat
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.models import Job, JobEvent
from apps.core.parsers import JSONBodyError, json_loads_checked
from apps.core.selectors import job_events, job_get_for_user, job_list_for_user, job_queue_position
from apps.core.services import job_cancel, job_retry


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def exception_handler(exc, context):
    """DRF's handler, plus a `message` field that a person can read in every error body. Django's ValidationError,
    raised by services and by model fields given a malformed value (a code that is not a UUID, say), is a 400 with
    its messages, wherever it comes from, rather than a 500: API views let a service's ValidationError reach this
    handler, and catch one themselves only to answer differently (another status, or a `code` a client acts on)."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError({"message": " ".join(exc.messages)})
    elif isinstance(exc, RequestDataTooBig):  # Django's own answer would be a bare HTML page
        limit = filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        exc = PayloadTooLarge(f"The request body is larger than {limit}.")
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "message" not in response.data:
        detail = response.data.get("detail")
        response.data["message"] = str(detail) if detail else "The request was not valid; see the fields for details."
    return response


class CheckedJSONField(serializers.JSONField):
    """A JSON value. A multipart form carries it as text, which DRF's JSONField parses with no bound (a RecursionError,
    a 500, for deep nesting): text is parsed here with the checks of the API's JSON parser."""

    def blank_value(self):
        """What blank text in a form stands for."""
        return None

    def get_value(self, dictionary):
        value = super().get_value(dictionary)
        return str(value) if isinstance(value, str) else value  # drop DRF's marker, so that DRF does not parse it

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json_loads_checked(data) if data.strip() else self.blank_value()
            except JSONBodyError as exc:
                raise serializers.ValidationError(str(exc))
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(CheckedJSONField):
    """A JSON object, such as a run's settings; anything else is a 400 that says so."""

    # Braces doubled: DRF formats error messages with str.format.
    default_error_messages = {"not_object": "Must be a JSON object, such as {{\"name\": value}}."}

    def blank_value(self):
        return {}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        return value


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["id", "type", "created_at", "data"]


class JobSerializer(serializers.ModelSerializer):
    queue_position = serializers.SerializerMethodField()
    parent = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = ["code", "kind", "title", "status", "phase", "progress", "message", "error_message", "config", "result",
                  "queue", "queue_position", "parent", "cancel_requested_at", "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    def get_queue_position(self, job) -> int | None:
        return job_queue_position(job=job)


class EventsQuerySerializer(serializers.Serializer):
    # The bound of a database integer: a larger number would fail in the query instead of here.
    after = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**63 - 1,
                                     help_text="Only the events after this event id (the last one you have).")


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The signed-in user's jobs. Other users' jobs answer 404."""

    serializer_class = JobSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Job.objects.none()
        return job_list_for_user(user=self.request.user)

    def get_object(self):
        return job_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(parameters=[EventsQuerySerializer], responses=JobEventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def events(self, request, code=None):
        job = self.get_object()
        query = EventsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(JobEventSerializer(job_events(job=job, after_id=query.validated_data["after"]), many=True).data)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, code=None):
        return Response(JobSerializer(job_cancel(job=self.get_object())).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, code=None):
        job = self.get_object()
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
            return Response({"message": "Only failed or cancelled jobs can be retried."}, status=status.HTTP_409_CONFLICT)
        return Response(JobSerializer(job_retry(job=job)).data, status=status.HTTP_202_ACCEPTED)
