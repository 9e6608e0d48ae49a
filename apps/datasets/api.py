import json

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from apps.core.api import JobSerializer
from apps.providers.api import GenerateOptionsSerializer
from apps.datasets.downloads import jsonl_response
from apps.datasets.models import Dataset, DatasetVersion, Document, QAPair, VersionExample
from apps.datasets.selectors import (
    dataset_get_for_user,
    dataset_list_for_user,
    dataset_version_by_number,
    dataset_version_get_for_user,
    dataset_version_list_for_user,
    dataset_versions,
    document_get_for_user,
    qa_pair_get_for_user,
    qa_pairs_for_dataset,
    version_examples,
)
from apps.datasets.services import (
    DatasetInUse,
    dataset_create,
    dataset_curate_start,
    dataset_delete,
    dataset_import_file_start,
    dataset_import_hub_start,
    dataset_version_freeze,
    dataset_version_update,
    document_extract_again,
    document_upload,
    qa_generate_start,
    qa_pair_create,
    qa_pair_delete,
    qa_pair_restore,
    qa_pair_update,
    qa_pairs_restore,
)
from workers.common.curation import CurateConfig
from workers.common.formats import TEXT_ENCODINGS
from workers.common.judge import MAX_RUBRIC
from workers.common.records import RECORD_SUFFIXES, STYLES


class DatasetSerializer(serializers.ModelSerializer):
    document_count = serializers.IntegerField(read_only=True)
    pair_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dataset
        fields = ["code", "name", "description", "document_count", "pair_count", "created_at"]
        read_only_fields = ["code", "created_at"]


class DocumentSerializer(serializers.ModelSerializer):
    job = serializers.SlugRelatedField(slug_field="code", read_only=True)
    # Both read from the document's extraction or import job (Document.status), never stored: list with
    # select_related("job").
    status = serializers.ChoiceField(
        choices=Document.Status.choices, read_only=True,
        help_text="pending while its extraction (or import) job is queued or running, then ready, failed or cancelled "
                  "as that job ended.")
    error_message = serializers.CharField(read_only=True, help_text="Why it failed, when it did: its job's readable error.")
    encoding = serializers.CharField(read_only=True, help_text="The text encoding a text file was read with (Python's "
                                                               "codec name, e.g. cp1251); empty for PDF, DOCX and PPTX.")
    encoding_choice = serializers.CharField(read_only=True, help_text="The encoding its owner chose; empty: told by the file.")
    warnings = serializers.ListField(child=serializers.CharField(), read_only=True,
                                     help_text="What its extraction may have read wrongly (a garbled decoding) or left out.")
    ocr = serializers.SerializerMethodField(help_text="Whether some of its text was read from images by OCR.")

    class Meta:
        model = Document
        fields = ["code", "filename", "size", "format", "status", "error_message", "pages", "encoding",
                  "encoding_choice", "warnings", "ocr", "job", "created_at"]
        read_only_fields = fields

    def get_ocr(self, document) -> bool:
        return bool(document.ocr_spans)


class ExtractAgainSerializer(serializers.Serializer):
    encoding = serializers.ChoiceField(choices=["", *TEXT_ENCODINGS], required=False, default="",
                                       help_text="The text encoding to read a text file in; empty or absent: told by "
                                                 "the file, as at upload.")


class UploadSerializer(serializers.Serializer):
    # Empty files reach the upload service, which names the file in its message.
    file = serializers.FileField(allow_empty_file=True)


class _SourceMixin:
    def get_document(self, pair) -> str | None:
        document = pair.source_document
        return str(document.code) if document else None

    def get_page(self, pair) -> int | None:
        return pair.chunk.page if pair.chunk_id else None


class QAPairSerializer(_SourceMixin, serializers.ModelSerializer):
    """A question-answer pair. `document` and `page` say where it came from; `excluded` is why curation set it aside;
    `edited` is true once a person changed it (generating pairs again keeps it, as it keeps hand-written ones)."""

    document = serializers.SerializerMethodField()
    chunk_index = serializers.IntegerField(source="chunk.index", read_only=True, allow_null=True)
    page = serializers.SerializerMethodField()
    excluded = serializers.ChoiceField(choices=QAPair.Exclusion.choices, allow_blank=True, read_only=True,
                                       help_text="Why curation set the pair aside; empty while it is kept.")
    # Blank texts pass through to the service, which explains what is missing in a readable message.
    system = serializers.CharField(required=False, allow_blank=True, default="")
    question = serializers.CharField(allow_blank=True)
    answer = serializers.CharField(allow_blank=True)

    class Meta:
        model = QAPair
        fields = ["id", "system", "question", "answer", "fact", "source", "edited", "rating", "excluded", "excluded_note",
                  "document", "chunk_index", "page", "created_at", "updated_at"]
        read_only_fields = ["id", "source", "edited", "rating", "excluded", "excluded_note", "document", "chunk_index", "page",
                            "created_at", "updated_at"]


class JSONLRenderer(BaseRenderer):
    """Lets clients ask for `Accept: application/jsonl`; exports stream their own body, errors come out as JSON."""

    media_type = "application/jsonl"
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


def jsonl_download(*, dataset, style: str, version=None):
    """A streamed JSONL attachment of a dataset's current pairs, or of a frozen version; 400 for an unknown style."""
    if style not in STYLES:
        raise ValidationError({"message": f"Unknown export style '{style}'. Choose one of: {', '.join(STYLES)}."})
    return jsonl_response(dataset=dataset, style=style, version=version)


STYLE_PARAMETER = OpenApiParameter("style", str, enum=list(STYLES), default="messages",
                                   description="messages (chat turns), alpaca (instruction/input/output) or sharegpt (conversations).")
JSONL_RESPONSE = {(200, "application/jsonl"): OpenApiResponse(OpenApiTypes.STR, description="One example per line.")}


class MappingField(serializers.JSONField):
    """A column mapping {"question": ..., "answer": ..., "system": ...}: a JSON object, or its JSON text in a form field."""

    def to_internal_value(self, data):
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data or "null")
            except ValueError:
                raise ValidationError({"message": "The mapping must be a JSON object such as "
                                                  '{"question": "prompt", "answer": "reply"}.'})
        if data is not None and not isinstance(data, dict):
            raise ValidationError({"message": "The mapping must be a JSON object naming the question and answer columns."})
        return data


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text=f"A {', '.join(RECORD_SUFFIXES)} file (multipart).")
    hub_id = serializers.CharField(required=False, allow_blank=True, help_text="Or a Hugging Face dataset id, e.g. openai/gsm8k.")
    config = serializers.CharField(required=False, allow_blank=True, default="", help_text="The Hub dataset's configuration.")
    split = serializers.CharField(required=False, allow_blank=True, default="train")
    limit = serializers.IntegerField(required=False, min_value=1, help_text="At most this many rows from the Hub.")
    mapping = MappingField(required=False, allow_null=True, default=None,
                           help_text='Only when the records are not recognised: {"question": col, "answer": col, "system": col}; '
                                     "a value may be a list of columns (joined with a blank line).")


class CurateSerializer(serializers.Serializer):
    dedupe_exact = serializers.BooleanField(default=CurateConfig.dedupe_exact)
    dedupe_near = serializers.BooleanField(default=CurateConfig.dedupe_near)
    near_threshold = serializers.FloatField(default=CurateConfig.near_threshold, help_text="Jaccard similarity of 3-grams, 0.3 to 1.")
    min_question_chars = serializers.IntegerField(default=0, min_value=0)
    max_question_chars = serializers.IntegerField(default=0, min_value=0, help_text="0: no limit.")
    min_answer_chars = serializers.IntegerField(default=0, min_value=0)
    max_answer_chars = serializers.IntegerField(default=0, min_value=0, help_text="0: no limit.")
    judge = serializers.BooleanField(default=False, help_text="Rate each pair 1-10 with a chat model.")
    judge_threshold = serializers.FloatField(default=CurateConfig.judge_threshold)
    judge_batch_size = serializers.IntegerField(default=CurateConfig.judge_batch_size)
    # No max_length here: the service refuses too long a rubric with a readable message.
    judge_rubric = serializers.CharField(required=False, allow_blank=True, default="",
                                         help_text=f"Your criteria for the judge (at most {MAX_RUBRIC} characters), "
                                                   "added to its prompt; empty for the "
                                                   "default (accuracy, relevance, clarity, usefulness).")
    judge_provider = serializers.CharField(required=False, allow_blank=True, default="",
                                           help_text="'default' (the site's endpoint) or the code of one of your providers.")
    scrub_pii = serializers.BooleanField(default=True, help_text="Scrub personal data before pairs are sent to the judge.")


class FreezeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
    heldout_ratio = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0.0, max_value=0.5,
                                           help_text="Share of examples held out for evaluation (never trained on); "
                                                     "the server's default when absent.")


class DatasetVersionSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="code", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)

    class Meta:
        model = DatasetVersion
        fields = ["code", "dataset", "dataset_name", "number", "note", "example_count", "heldout_count", "recall_count", "created_at"]
        read_only_fields = ["code", "dataset", "dataset_name", "number", "example_count", "heldout_count", "recall_count", "created_at"]


class VersionExampleSerializer(_SourceMixin, serializers.ModelSerializer):
    document = serializers.SerializerMethodField()
    chunk_index = serializers.IntegerField(source="chunk.index", read_only=True, allow_null=True)
    page = serializers.SerializerMethodField()

    class Meta:
        model = VersionExample
        fields = ["position", "split", "fact", "system", "question", "answer", "source", "document", "chunk_index", "page"]
        read_only_fields = fields


class DatasetInUseSerializer(serializers.Serializer):
    message = serializers.CharField()
    blocked_by = serializers.ListField(child=serializers.CharField(), help_text="What must be deleted first, e.g. "
                                                                              "\"fine tune 'Valley v1'\".")


class RestoredSerializer(serializers.Serializer):
    restored = serializers.IntegerField()


class DatasetViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Datasets of the signed-in user: documents go in, question-answer pairs come out."""

    serializer_class = DatasetSerializer
    lookup_field = "code"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Dataset.objects.none()
        return dataset_list_for_user(user=self.request.user)

    def get_object(self):
        dataset_get_for_user(user=self.request.user, code=self.kwargs["code"])  # 404 for strangers
        return self.get_queryset().get(code=self.kwargs["code"])

    def perform_create(self, serializer):
        dataset = dataset_create(owner=self.request.user, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=dataset.pk)

    @extend_schema(responses={204: None, 409: DatasetInUseSerializer})
    def destroy(self, request, *args, **kwargs):
        """Delete the dataset with its documents (and their stored files), pairs and frozen versions. While fine-tunes
        or other runs trained on it remain, answers 409 naming them in `blocked_by`."""
        try:
            dataset_delete(dataset=dataset_get_for_user(user=request.user, code=kwargs["code"]))
        except DatasetInUse as exc:
            return Response({"message": str(exc), "blocked_by": exc.blockers}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: DocumentSerializer, 200: DocumentSerializer(many=True)})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def documents(self, request, code=None):
        """GET lists the dataset's documents; POST uploads one (multipart field `file`) and queues its extraction."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        if request.method == "GET":
            return Response(DocumentSerializer(dataset.documents.select_related("job"), many=True).data)
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        document = document_upload(dataset=dataset, uploaded_file=upload.validated_data["file"])
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)

    @extend_schema(request={"multipart/form-data": ImportSerializer, "application/json": ImportSerializer},
                   responses={202: JobSerializer})
    @action(detail=True, methods=["post"], url_path="import", url_name="import")
    def import_examples(self, request, code=None):
        """Queue a job that imports training examples (202 with the job) from an uploaded file (multipart `file`;
        stored as one of the dataset's documents) or a Hugging Face dataset (`hub_id`, owner/name). Chat, ShareGPT,
        Alpaca, prompt/completion and question/answer records are recognised; otherwise give a `mapping` of columns.

        A bad request (no source or two, an empty, oversized or unsupported file, a malformed id, an offline
        server) answers 400 at once. What is inside the data is read by the worker within the server's limits
        (GARAGE_IMPORT_MAX_ROWS rows, GARAGE_IMPORT_MAX_MB of unpacked data): follow the job
        (`/api/v1/jobs/{code}/`). It ends succeeded with `result` {imported, skipped, shape, document, filename} or
        failed with a readable `error_message` (unrecognised records, an unknown column, undecodable text, a file
        beyond a limit)."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if bool(values.get("file")) == bool((values.get("hub_id") or "").strip()):
            raise ValidationError({"message": "Send a file or a Hugging Face dataset id (`hub_id`), one of the two."})
        if values.get("file"):
            job = dataset_import_file_start(dataset=dataset, uploaded_file=values["file"], mapping=values.get("mapping"))
        else:
            job = dataset_import_hub_start(dataset=dataset, dataset_id=values["hub_id"], split=values.get("split") or "train",
                                           config=values.get("config") or "", mapping=values.get("mapping"),
                                           limit=values.get("limit"))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[STYLE_PARAMETER, OpenApiParameter("version", int, description="A frozen version's number; "
                                                                 "without it, the current pairs.")],
                   responses=JSONL_RESPONSE)
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, JSONLRenderer])
    def export(self, request, code=None):
        """Download the current pairs (or a frozen version's examples) as JSONL in one of three styles."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        version = None
        if request.query_params.get("version"):
            version = dataset_version_by_number(dataset=dataset, number=request.query_params["version"])
        return jsonl_download(dataset=dataset, version=version, style=request.query_params.get("style", "messages"))

    @extend_schema(request=CurateSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def curate(self, request, code=None):
        """Queue a curation job: set aside duplicate, too short or too long pairs, and (with `judge`) pairs a chat
        model rates below `judge_threshold`. Nothing is deleted; `restore` puts set-aside pairs back."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        data = CurateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = dataset_curate_start(dataset=dataset, options=dict(data.validated_data))
        except Http404:
            # The dataset was found: a 404 here is about the judge `provider` named in the body, a bad value of the
            # request (400) rather than a missing resource. A ValidationError goes to the API's exception handler.
            raise ValidationError({"message": "No such provider: give 'default' or the code of one of your providers."})
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=RestoredSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, code=None):
        """Put every pair that curation set aside back into the dataset."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        return Response({"restored": qa_pairs_restore(dataset=dataset)})

    @extend_schema(methods=["GET"], responses=DatasetVersionSerializer(many=True))
    @extend_schema(methods=["POST"], request=FreezeSerializer, responses={201: DatasetVersionSerializer})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request, code=None):
        """GET lists the dataset's frozen versions, newest first; POST freezes the current pairs into a new one."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        if request.method == "GET":
            page = self.paginate_queryset(dataset_versions(dataset=dataset).select_related("dataset"))
            return self.get_paginated_response(DatasetVersionSerializer(page, many=True).data)
        data = FreezeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = dataset_version_freeze(dataset=dataset, note=data.validated_data["note"],
                                         heldout_ratio=data.validated_data["heldout_ratio"])
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GenerateOptionsSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def generate(self, request, code=None):
        """Queue a job that makes question-answer pairs from the extracted documents, with the generator and
        options given (all optional: the default is the offline extractive generator). A `provider` that is
        not one of the user's answers 404."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        options = GenerateOptionsSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        job = qa_generate_start(dataset=dataset, **options.validated_data)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


DATASET_CODE = OpenApiParameter("dataset_code", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The dataset's code.")
PAIR_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The pair's id.")


@extend_schema_view(
    list=extend_schema(parameters=[DATASET_CODE,
                                   OpenApiParameter("search", str, description="Only pairs whose question, answer or system prompt contains this."),
                                   OpenApiParameter("set_aside", bool, description="List the pairs curation set aside instead.")]),
    create=extend_schema(parameters=[DATASET_CODE]),
    retrieve=extend_schema(parameters=[DATASET_CODE, PAIR_ID]),
    update=extend_schema(parameters=[DATASET_CODE, PAIR_ID]),
    partial_update=extend_schema(parameters=[DATASET_CODE, PAIR_ID]),
    destroy=extend_schema(parameters=[DATASET_CODE, PAIR_ID]),
)
class QAPairViewSet(viewsets.ModelViewSet):
    """The question-answer pairs of one of the user's datasets: list (with search), add, edit, delete.
    Frozen versions keep their own copies, so editing never changes what a model was trained on."""

    serializer_class = QAPairSerializer

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Strangers get 404 before anything else, even before a body is validated.
        self._dataset()

    def _dataset(self):
        if not hasattr(self, "_dataset_cache"):
            self._dataset_cache = dataset_get_for_user(user=self.request.user, code=self.kwargs["dataset_code"])
        return self._dataset_cache

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return QAPair.objects.none()
        set_aside = self.request.query_params.get("set_aside", "").lower() in {"1", "true", "yes"}
        return qa_pairs_for_dataset(dataset=self._dataset(), search=self.request.query_params.get("search", ""),
                                    set_aside=set_aside)

    def get_object(self):
        return qa_pair_get_for_user(user=self.request.user, dataset=self._dataset(), pk=self.kwargs["pk"])

    def perform_create(self, serializer):
        values = serializer.validated_data
        serializer.instance = qa_pair_create(dataset=self._dataset(), question=values["question"],
                                             answer=values["answer"], system=values.get("system", ""))

    def perform_update(self, serializer):
        values = serializer.validated_data
        serializer.instance = qa_pair_update(pair=serializer.instance, question=values.get("question"),
                                             answer=values.get("answer"), system=values.get("system") if "system" in serializer.initial_data else None)

    def perform_destroy(self, instance):
        qa_pair_delete(pair=instance)

    @extend_schema(request=None, parameters=[DATASET_CODE, PAIR_ID], responses=QAPairSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, dataset_code=None, pk=None):
        """Put a pair that curation set aside back into the dataset."""
        return Response(QAPairSerializer(qa_pair_restore(pair=self.get_object())).data)


class DocumentViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Documents of the signed-in user (list a dataset's with GET /datasets/{code}/documents/)."""

    serializer_class = DocumentSerializer
    lookup_field = "code"

    def get_queryset(self):
        return Document.objects.none()  # only single documents are served, each checked by get_object

    def get_object(self):
        return document_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(request=ExtractAgainSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def extract(self, request, code=None):
        """Extract the document again, in the text encoding given (a text file whose letters came out wrong), or
        as told by the file. Its text and chunks are replaced; pairs already made from it stay."""
        document = self.get_object()
        choice = ExtractAgainSerializer(data=request.data)
        choice.is_valid(raise_exception=True)
        job = document_extract_again(document=document, encoding=choice.validated_data["encoding"])
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class DatasetVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                            viewsets.GenericViewSet):
    """Frozen dataset versions of the signed-in user. Only the note can change; the examples never do.
    Create one with POST /datasets/{code}/versions/."""

    serializer_class = DatasetVersionSerializer
    lookup_field = "code"
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return DatasetVersion.objects.none()
        return dataset_version_list_for_user(user=self.request.user, dataset_code=self.request.query_params.get("dataset") or None)

    def get_object(self):
        return dataset_version_get_for_user(user=self.request.user, code=self.kwargs["code"])

    @extend_schema(parameters=[OpenApiParameter("dataset", str, description="Only this dataset's versions (its code); "
                                                                      "a code of no dataset of yours gives an empty list.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.instance = dataset_version_update(version=serializer.instance,
                                                     note=serializer.validated_data.get("note", serializer.instance.note))

    @extend_schema(parameters=[OpenApiParameter("search", str)], responses=VersionExampleSerializer(many=True))
    @action(detail=True, methods=["get"])
    def examples(self, request, code=None):
        """The version's examples in order, each linking back to its source document and page."""
        version = self.get_object()
        page = self.paginate_queryset(version_examples(version=version, search=request.query_params.get("search", "")))
        return self.get_paginated_response(VersionExampleSerializer(page, many=True).data)

    @extend_schema(parameters=[STYLE_PARAMETER], responses=JSONL_RESPONSE)
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, JSONLRenderer])
    def export(self, request, code=None):
        """Download the version's examples as JSONL in one of three styles."""
        version = self.get_object()
        return jsonl_download(dataset=version.dataset, version=version, style=request.query_params.get("style", "messages"))
