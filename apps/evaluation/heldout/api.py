"""REST API of the held-out evaluation: the report of each run (before/after metrics, the questions that changed
most, every question with both answers and its source) and starting a run again."""
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import JobSerializer
from apps.evaluation.heldout.selectors import (
    heldout_evaluation_get_for_user,
    heldout_evaluation_list_for_user,
    heldout_item_list,
    heldout_items_changed_most,
)
from apps.evaluation.heldout.services import AUTO, heldout_evaluation_start
from apps.evaluation.models import HeldoutEvaluation, HeldoutItem
from apps.training.selectors import finetune_get_for_user
from workers.common.judge import MAX_RUBRIC


class HeldoutItemSerializer(serializers.ModelSerializer):
    source = serializers.SerializerMethodField(help_text="The document and pages the question came from, or null.")

    class Meta:
        model = HeldoutItem
        fields = ["index", "system", "question", "reference", "base_answer", "tuned_answer", "base_exact_match",
                  "tuned_exact_match", "base_token_f1", "tuned_token_f1", "base_rouge_l", "tuned_rouge_l", "base_judge",
                  "tuned_judge", "f1_delta", "change", "source"]
        read_only_fields = fields

    def get_source(self, item) -> dict | None:
        example = item.example
        document = example.source_document if example is not None else None
        if document is None:
            return None
        chunk = example.chunk
        return {"document": str(document.code), "filename": document.filename,
                "page": chunk.page if chunk else None, "page_end": chunk.page_end if chunk else None}


class HeldoutEvaluationSerializer(serializers.ModelSerializer):
    finetune = serializers.SlugRelatedField(slug_field="code", read_only=True)
    job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = HeldoutEvaluation
        fields = ["code", "finetune", "automatic", "judge_label", "settings", "results", "job", "created_at"]
        read_only_fields = fields


class HeldoutReportSerializer(HeldoutEvaluationSerializer):
    most_improved = serializers.SerializerMethodField()
    most_worse = serializers.SerializerMethodField()

    class Meta(HeldoutEvaluationSerializer.Meta):
        fields = HeldoutEvaluationSerializer.Meta.fields + ["most_improved", "most_worse"]
        read_only_fields = fields

    def _changed(self, evaluation):
        if not hasattr(self, "_changed_most"):
            self._changed_most = heldout_items_changed_most(evaluation=evaluation)
        return self._changed_most

    @extend_schema_field(HeldoutItemSerializer(many=True))
    def get_most_improved(self, evaluation) -> list:
        return HeldoutItemSerializer(self._changed(evaluation)[0], many=True).data

    @extend_schema_field(HeldoutItemSerializer(many=True))
    def get_most_worse(self, evaluation) -> list:
        return HeldoutItemSerializer(self._changed(evaluation)[1], many=True).data


class HeldoutStartSerializer(serializers.Serializer):
    finetune = serializers.UUIDField(help_text="One of your trained fine-tunes (its code).")
    judge_provider = serializers.CharField(required=False, default=AUTO, allow_blank=True, max_length=100,
                                           help_text="“auto” (your first provider, else the site's endpoint), “none”, "
                                                     "“default” (the site's endpoint) or one of your providers' codes.")
    batch_size = serializers.IntegerField(required=False, allow_null=True, default=None)
    max_new_tokens = serializers.IntegerField(required=False, allow_null=True, default=None,
                                              help_text="Null: from the lengths of the reference answers.")
    scrub_pii = serializers.BooleanField(required=False, default=True,
                                         help_text="Replace personal data before the judge sees the text.")
    # No max_length here: the service refuses too long a rubric with a readable message.
    judge_rubric = serializers.CharField(required=False, allow_blank=True, default="",
                                         help_text=f"Your criteria for the judge (at most {MAX_RUBRIC} characters), "
                                                   "added to its prompt; empty for the "
                                                   "default (does the answer say what the reference says).")


class HeldoutFilterSerializer(serializers.Serializer):
    finetune = serializers.UUIDField(required=False, help_text="Only the evaluations of this fine-tune (its code).")


class HeldoutEvaluationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Held-out evaluations of the signed-in user's fine-tunes: base and tuned model on the questions training never
    saw. One runs after every training; start another with POST."""

    serializer_class = HeldoutEvaluationSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return HeldoutEvaluation.objects.none()
        query = HeldoutFilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        code = query.validated_data.get("finetune")
        finetune = finetune_get_for_user(user=self.request.user, code=code) if code else None
        return heldout_evaluation_list_for_user(user=self.request.user, finetune=finetune)

    def get_object(self):
        return heldout_evaluation_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(parameters=[HeldoutFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: HeldoutReportSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(HeldoutReportSerializer(self.get_object()).data)

    @extend_schema(request=HeldoutStartSerializer, responses={201: HeldoutEvaluationSerializer})
    def create(self, request):
        data = HeldoutStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        finetune = finetune_get_for_user(user=request.user, code=values["finetune"])
        evaluation = heldout_evaluation_start(
            finetune=finetune, judge_provider=values["judge_provider"],
            settings={k: values[k] for k in ("batch_size", "max_new_tokens", "scrub_pii", "judge_rubric")})
        return Response(HeldoutEvaluationSerializer(evaluation).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("change", str, enum=["improved", "worse", "same"],
                                                description="Only the questions whose answer improved, got worse or "
                                                            "stayed about the same.")],
                   responses={200: HeldoutItemSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def items(self, request, code=None):
        evaluation = self.get_object()
        page = self.paginate_queryset(heldout_item_list(evaluation=evaluation, change=request.query_params.get("change")))
        return self.get_paginated_response(HeldoutItemSerializer(page, many=True).data)
