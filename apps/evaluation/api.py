from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import JobSerializer
from apps.evaluation.models import BenchmarkItem, BenchmarkRun
from apps.evaluation.selectors import benchmark_item_list, benchmark_run_get_for_user, benchmark_run_list_for_user
from apps.evaluation.services import DEFAULT_SETTINGS, benchmark_run_create
from apps.prompts.selectors import saved_prompt_apply
from apps.training.selectors import finetune_get_for_user


class BenchmarkRunSerializer(serializers.ModelSerializer):
    finetune = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = BenchmarkRun
        fields = ["code", "name", "benchmark", "base_model", "finetune", "model_label", "settings", "results", "job",
                  "created_at"]
        read_only_fields = fields


class BenchmarkRunCreateSerializer(serializers.Serializer):
    benchmark = serializers.ChoiceField(choices=BenchmarkRun.Benchmark.choices, default=BenchmarkRun.Benchmark.GSM8K)
    base_model = serializers.CharField(required=False, default="", allow_blank=True, max_length=300,
                                       help_text="An installed model's id (such as pypi/SmolLM2-135M-Instruct), a Hub "
                                                 "id or a model folder of the server; or one of your tuned models as "
                                                 "finetune:<code>, or give `finetune`.")
    finetune = serializers.UUIDField(required=False, allow_null=True, default=None,
                                     help_text="One of your fine-tuned models (its code).")
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    limit = serializers.IntegerField(required=False, allow_null=True, default=DEFAULT_SETTINGS["limit"],
                                     help_text="Problems to ask; null for all.")
    subset = serializers.ChoiceField(choices=["first", "random"], default="first")
    few_shot = serializers.IntegerField(required=False, default=0)
    temperature = serializers.FloatField(required=False, default=0.0, help_text="0 is greedy decoding.")
    top_p = serializers.FloatField(required=False, default=1.0)
    seed = serializers.IntegerField(required=False, default=0)
    max_new_tokens = serializers.IntegerField(required=False, default=DEFAULT_SETTINGS["max_new_tokens"])
    batch_size = serializers.IntegerField(required=False, default=DEFAULT_SETTINGS["batch_size"])
    prompt_template = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False,
                                            help_text="Must contain {question}; empty for the benchmark's default.")
    system_prompt = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=False)
    saved_prompt = serializers.UUIDField(required=False, allow_null=True, default=None,
                                         help_text="One of your saved prompts (its code): its text becomes the system "
                                                   "prompt. Give it or system_prompt, not both.")
    source = serializers.CharField(required=False, default="", allow_blank=True, max_length=200,
                                   help_text="AIME only: a Hub dataset id or a JSONL file in the server's benchmark folder.")
    split = serializers.CharField(required=False, default="", allow_blank=True, max_length=40)


class BenchmarkItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = BenchmarkItem
        fields = ["index", "problem_id", "question", "reference", "completion", "extracted", "formatted", "correct"]
        read_only_fields = fields


class BenchmarkRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Benchmark runs (GSM8K, AIME) of the signed-in user: start one for a base model or a fine-tune, follow its
    job, read its accuracy, format rate and per-problem results."""

    serializer_class = BenchmarkRunSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return BenchmarkRun.objects.none()
        return benchmark_run_list_for_user(user=self.request.user, benchmark=self.request.query_params.get("benchmark"))

    def get_object(self):
        return benchmark_run_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(parameters=[OpenApiParameter("benchmark", str, enum=BenchmarkRun.Benchmark.values)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=BenchmarkRunCreateSerializer, responses={201: BenchmarkRunSerializer})
    def create(self, request):
        data = BenchmarkRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        # What is left in `values` are the run's settings (benchmark_settings refuses any other key): take the
        # request's other fields out, the fine-tune even when it is null.
        code = values.pop("finetune")
        finetune = finetune_get_for_user(user=request.user, code=code) if code else None
        benchmark, base_model, name = values.pop("benchmark"), values.pop("base_model"), values.pop("name")
        saved_prompt = values.pop("saved_prompt")
        values["system_prompt"] = saved_prompt_apply(user=request.user, code=saved_prompt,
                                                     system_prompt=values["system_prompt"])
        run = benchmark_run_create(owner=request.user, benchmark=benchmark, base_model=base_model, finetune=finetune,
                                   settings=values, name=name)
        return Response(BenchmarkRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("correct", bool, description="Only correct (true) or wrong (false) answers.")],
                   responses={200: BenchmarkItemSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def items(self, request, code=None):
        run = self.get_object()
        correct = {"true": True, "1": True, "false": False, "0": False}.get(request.query_params.get("correct", "").lower())
        page = self.paginate_queryset(benchmark_item_list(run=run, correct=correct))
        return self.get_paginated_response(BenchmarkItemSerializer(page, many=True).data)
