"""Job endpoints of the REST API and the API's error format."""
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.models import Job, JobEvent
from apps.core.selectors import job_events, job_get_for_user, job_list_for_user, job_queue_position
from apps.core.services import job_cancel, job_retry


def exception_handler(exc, context):
    """DRF's handler, plus a `message` field that a person can read in every error body."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "message" not in response.data:
        detail = response.data.get("detail")
        response.data["message"] = str(detail) if detail else "The request was not valid; see the fields for details."
    return response


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["id", "type", "created_at", "data"]


class JobSerializer(serializers.ModelSerializer):
    queue_position = serializers.SerializerMethodField()
    parent = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Job
        fields = ["code", "kind", "title", "status", "phase", "progress", "message", "error_message", "config", "result",
                  "queue", "queue_position", "parent", "cancel_requested_at", "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    def get_queue_position(self, job) -> int | None:
        return job_queue_position(job=job)


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

    @extend_schema(responses=JobEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request, code=None):
        after = int(request.query_params.get("after", 0) or 0)
        return Response(JobEventSerializer(job_events(job=self.get_object(), after_id=after), many=True).data)

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
