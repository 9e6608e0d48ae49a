from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import JobSerializer, JSONObjectField
from apps.datasets.selectors import dataset_version_get_for_user
from apps.prompts.models import OptimizedPrompt, PromptCandidate, SavedPrompt
from apps.prompts.selectors import (
    optimized_prompt_get_for_user,
    optimized_prompt_list_for_user,
    saved_prompt_get_for_user,
    saved_prompt_list_for_user,
)
from apps.prompts.services import (
    DEFAULTS,
    optimized_prompt_create,
    saved_prompt_create,
    saved_prompt_delete,
    saved_prompt_from_run,
    saved_prompt_update,
)


class PromptCandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptCandidate
        fields = ["index", "parent_index", "prompt", "status", "val_score", "val_scores", "minibatch_score",
                  "minibatch_parent_score", "calls", "calls_used", "note"]
        read_only_fields = fields


class OptimizedPromptSerializer(serializers.ModelSerializer):
    version = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    job = JobSerializer(read_only=True, allow_null=True)
    candidates = PromptCandidateSerializer(many=True, read_only=True)

    class Meta:
        model = OptimizedPrompt
        fields = ["code", "name", "source", "version", "task_provider", "task_local_model", "task_label",
                  "reflection_provider", "reflection_local_model", "reflection_label", "metric", "budget",
                  "seed_prompt", "settings", "train_count", "val_count", "best_prompt", "result", "job", "candidates",
                  "created_at"]
        read_only_fields = fields


class OptimizedPromptCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    source = serializers.ChoiceField(choices=OptimizedPrompt.Source.choices, default=OptimizedPrompt.Source.VERSION)
    version = serializers.UUIDField(required=False, allow_null=True, default=None,
                                    help_text="With source 'version': one of your frozen dataset versions.")
    task_model = serializers.CharField(max_length=64, help_text="'default' (the site's endpoint), one of your "
                                                                "providers' codes, or 'local'.")
    task_local_model = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=300,
        help_text="With task_model 'local': an installed model's id (such as pypi/SmolLM2-135M-Instruct), a Hub id, a "
                  "model folder of the server, or one of your tuned models as finetune:<code>. Empty: the server's "
                  "default model.")
    reflection_model = serializers.CharField(max_length=64, help_text="As task_model.")
    reflection_local_model = serializers.CharField(required=False, default="", allow_blank=True, max_length=300,
                                                   help_text="As task_local_model.")
    metric = serializers.ChoiceField(choices=OptimizedPrompt.Metric.choices, default=OptimizedPrompt.Metric.F1)
    budget = serializers.IntegerField(help_text="Model calls in all, task and reflection; never exceeded.")
    seed_prompt = serializers.CharField(required=False, default="", allow_blank=True)
    settings = JSONObjectField(required=False, default=dict, help_text=", ".join(DEFAULTS) + ".")


class SaveSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    index = serializers.IntegerField(required=False, allow_null=True, default=None,
                                     help_text="A candidate's number; empty for the best prompt.")


class SavedPromptSerializer(serializers.ModelSerializer):
    source_run = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = SavedPrompt
        fields = ["code", "name", "text", "score", "source_run", "created_at"]
        read_only_fields = ["code", "score", "source_run", "created_at"]


class OptimizedPromptViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Prompt optimizations of the signed-in user: reflective prompt evolution of a system prompt."""

    serializer_class = OptimizedPromptSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OptimizedPrompt.objects.none()
        return optimized_prompt_list_for_user(user=self.request.user).prefetch_related("candidates")

    def get_object(self):
        return optimized_prompt_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(request=OptimizedPromptCreateSerializer, responses={201: OptimizedPromptSerializer})
    def create(self, request):
        data = OptimizedPromptCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        code = values.pop("version")
        version = dataset_version_get_for_user(user=request.user, code=code) if code else None
        run = optimized_prompt_create(owner=request.user, version=version, **values)
        return Response(OptimizedPromptSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SaveSerializer, responses={201: SavedPromptSerializer})
    @action(detail=True, methods=["post"])
    def save(self, request, code=None):
        """Save the run's best prompt (or one candidate's) as a reusable prompt."""
        run = self.get_object()
        data = SaveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prompt = saved_prompt_from_run(run=run, **data.validated_data)
        return Response(SavedPromptSerializer(prompt).data, status=status.HTTP_201_CREATED)


class SavedPromptViewSet(viewsets.ModelViewSet):
    """System prompts the signed-in user keeps for reuse (playground, benchmarks, training)."""

    serializer_class = SavedPromptSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SavedPrompt.objects.none()
        return saved_prompt_list_for_user(user=self.request.user)

    def get_object(self):
        return saved_prompt_get_for_user(user=self.request.user, code=self.kwargs["code"])

    def perform_create(self, serializer):
        serializer.instance = saved_prompt_create(owner=self.request.user, name=serializer.validated_data["name"],
                                                  text=serializer.validated_data["text"])

    def perform_update(self, serializer):
        saved_prompt_update(prompt=serializer.instance, name=serializer.validated_data.get("name"),
                            text=serializer.validated_data.get("text"))

    def perform_destroy(self, instance):
        saved_prompt_delete(prompt=instance)
