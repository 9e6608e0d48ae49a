from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import CheckedJSONField, JobSerializer, JSONObjectField
from apps.core.parsers import BoundedJSONParser
from apps.datasets.selectors import dataset_version_get_for_user
from apps.rl.models import GrpoRun, RewardPreview
from apps.rl.selectors import (
    grpo_run_get_for_user,
    grpo_run_history,
    grpo_run_list_for_user,
    reward_preview_get_for_user,
    reward_preview_list_for_user,
)
from apps.rl.services import (
    MAX_PREVIEW_SAMPLES,
    grpo_run_download,
    grpo_recipe_create,
    grpo_run_create,
    grpo_source_prompts,
    reward_preview_create,
)
from apps.rl.views import library_json
from apps.training.services import BACKENDS


def _source_version(request, values: dict):
    """The dataset version a request's prompts come from (source "version"), the user's own (404 otherwise); None
    for the other sources. ValidationError when the source is a version and none is named."""
    if values["source"] != GrpoRun.Source.VERSION:
        return None
    if not values.get("version"):
        raise DjangoValidationError("Name one of your dataset versions (version).")
    return dataset_version_get_for_user(user=request.user, code=values["version"])


class GrpoRunSerializer(serializers.ModelSerializer):
    version = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    base_benchmark = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    tuned_benchmark = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    model = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True,
                                         help_text="The tuned model it registered when it finished (see /api/v1/finetunes/): "
                                                   "chat with it, evaluate, export or publish it there.")
    job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = GrpoRun
        fields = ["code", "name", "base_model", "method", "source", "version", "prompts_filename", "prompt_count",
                  "answer_count", "rewards", "settings", "recipe", "metrics", "job", "base_benchmark", "tuned_benchmark",
                  "model", "created_at"]
        read_only_fields = fields


class GrpoRunCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    base_model = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=300,
        help_text="The model to train: an installed model's id (such as pypi/SmolLM2-135M-Instruct), a Hub id, a model "
                  "folder of the server, or one of your tuned models as finetune:<code>. Empty: the server's default "
                  "model.")
    method = serializers.ChoiceField(choices=GrpoRun.Method.choices, default=GrpoRun.Method.LORA)
    source = serializers.ChoiceField(choices=GrpoRun.Source.choices, default=GrpoRun.Source.GSM8K)
    version = serializers.UUIDField(required=False, allow_null=True, default=None,
                                    help_text="With source 'version': one of your frozen dataset versions.")
    prompts_file = serializers.FileField(required=False, allow_null=True, default=None,
                                         help_text="With source 'upload' (multipart): a JSONL file, one object per line "
                                                   "with 'prompt' (or 'question') and optional 'answer', 'solution', "
                                                   "'system'.")
    rewards = CheckedJSONField(help_text="Reward function specs, such as [{\"type\": \"format\", \"weight\": 0.5}, "
                                         "{\"type\": \"answer_match\"}]; see GET /api/v1/reward-functions/.")
    settings = JSONObjectField(required=False, default=dict,
                               help_text="num_generations, prompts_per_step, max_prompt_length, "
                                         "max_completion_length, learning_rate, beta, temperature, max_steps, "
                                         "lora_r, lora_alpha, warmup_steps, warmup_learning_rate, warmup_template, "
                                         "system_prompt, checkpoint_every, prompt_limit, seed, backend ("
                                         + ", ".join(BACKENDS) + ").")


class RecipeSerializer(serializers.Serializer):
    base_model = serializers.CharField(required=False, default="", allow_blank=True, max_length=300,
                                       help_text="Empty: Gemma 3 1B Instruct where this server can run it, else the "
                                                 "server's default model. Any model a run takes works.")
    judge = serializers.BooleanField(required=False, default=False)
    provider = serializers.CharField(required=False, default="default", max_length=64,
                                     help_text="'default' (the site's endpoint) or one of your providers' codes.")
    rubric = serializers.CharField(required=False, default="", allow_blank=True, max_length=4000)
    settings = JSONObjectField(required=False, default=dict, help_text="Overrides of the recipe's settings.")


class GrpoRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """GRPO runs of the signed-in user: reinforcement learning from prompts and composable reward functions."""

    serializer_class = GrpoRunSerializer
    lookup_field = "code"
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return GrpoRun.objects.none()
        return grpo_run_list_for_user(user=self.request.user)

    def get_object(self):
        return grpo_run_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(request=GrpoRunCreateSerializer, responses={201: GrpoRunSerializer})
    def create(self, request):
        data = GrpoRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = _source_version(request, values)
        run = grpo_run_create(owner=request.user, rewards=values["rewards"],
                              source=values["source"], version=version, prompts_file=values.get("prompts_file"),
                              base_model=values["base_model"], method=values["method"], settings=values["settings"],
                              name=values["name"])
        return Response(GrpoRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RecipeSerializer, responses={201: GrpoRunSerializer},
                   description="The reference recipe: Gemma 3 1B Instruct on GSM8K with format and correctness rewards "
                               "(and an optional LLM judge); GSM8K benchmarks of base and tuned follow when it ends.")
    @action(detail=False, methods=["post"])
    def recipe(self, request):
        data = RecipeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = grpo_recipe_create(owner=request.user, judge=values["judge"], provider=values["provider"],
                                 rubric=values["rubric"], base_model=values["base_model"], settings=values["settings"])
        return Response(GrpoRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="The step metrics so far: reward (total and per function), KL, completion length, judge "
                               "calls; every few steps a rolling sample of completions with their scores.")
    @action(detail=True, methods=["get"])
    def history(self, request, code=None):
        return Response({"steps": grpo_run_history(run=self.get_object())})

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, code=None):
        return grpo_run_download(run=self.get_object())


class RewardPreviewSerializer(serializers.ModelSerializer):
    job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = RewardPreview
        fields = ["code", "rewards", "samples", "results", "judge", "base_model", "settings", "job", "created_at"]
        read_only_fields = fields


class SampleSerializer(serializers.Serializer):
    prompt = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False)
    completion = serializers.CharField(allow_blank=True, trim_whitespace=False)
    answer = serializers.CharField(required=False, default="", allow_blank=True)


class RewardPreviewCreateSerializer(serializers.Serializer):
    rewards = CheckedJSONField()
    samples = SampleSerializer(many=True, required=False, default=list,
                               help_text="Completions to score at once. Or leave empty and give base_model.")
    base_model = serializers.CharField(required=False, default="", allow_blank=True, max_length=300,
                                       help_text="The model writes the completions (a short job) for the first "
                                                 "prompts of `source`: any model a run takes (see GRPO runs' "
                                                 "base_model).")
    source = serializers.ChoiceField(choices=GrpoRun.Source.choices, default=GrpoRun.Source.GSM8K,
                                     help_text="Where the prompts come from: gsm8k or version (upload is for runs).")
    version = serializers.UUIDField(required=False, allow_null=True, default=None)
    count = serializers.IntegerField(required=False, default=4, min_value=1, max_value=MAX_PREVIEW_SAMPLES)
    temperature = serializers.FloatField(required=False, default=1.0)
    max_new_tokens = serializers.IntegerField(required=False, default=128)
    system_prompt = serializers.CharField(required=False, default="", allow_blank=True, max_length=4000)


class RewardPreviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Reward functions tried on a few completions before a run: each function's score per completion."""

    serializer_class = RewardPreviewSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RewardPreview.objects.none()
        return reward_preview_list_for_user(user=self.request.user)

    def get_object(self):
        return reward_preview_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(request=RewardPreviewCreateSerializer, responses={201: RewardPreviewSerializer})
    def create(self, request):
        data = RewardPreviewCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["base_model"]:
            prompts = grpo_source_prompts(source=values["source"], version=_source_version(request, values))
            preview = reward_preview_create(owner=request.user, rewards=values["rewards"],
                                            base_model=values["base_model"], prompts=prompts, count=values["count"],
                                            temperature=values["temperature"], max_new_tokens=values["max_new_tokens"],
                                            system_prompt=values["system_prompt"])
        else:
            preview = reward_preview_create(owner=request.user, rewards=values["rewards"],
                                            samples=[dict(s) for s in values["samples"]])
        return Response(RewardPreviewSerializer(preview).data, status=status.HTTP_201_CREATED)


class RewardLibraryView(APIView):
    """The reward functions a spec may use: each type, what it rewards, and its parameters with defaults."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response({"functions": library_json()})
