from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.api import JobSerializer
from apps.datasets.models import Dataset, Document, QAPair
from apps.datasets.selectors import dataset_get_for_user, dataset_list_for_user, qa_pairs_for_dataset
from apps.datasets.services import dataset_create, document_upload, qa_generate_start


def as_api_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError({"message": " ".join(exc.messages)})


class DatasetSerializer(serializers.ModelSerializer):
    document_count = serializers.IntegerField(read_only=True)
    pair_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dataset
        fields = ["code", "name", "description", "document_count", "pair_count", "created_at"]
        read_only_fields = ["code", "created_at"]


class DocumentSerializer(serializers.ModelSerializer):
    job = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Document
        fields = ["code", "filename", "size", "format", "status", "error_message", "pages", "job", "created_at"]
        read_only_fields = fields


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class QAPairSerializer(serializers.ModelSerializer):
    document = serializers.SerializerMethodField()
    chunk_index = serializers.IntegerField(source="chunk.index", read_only=True, default=None)

    class Meta:
        model = QAPair
        fields = ["id", "question", "answer", "source", "document", "chunk_index"]
        read_only_fields = fields

    def get_document(self, pair) -> str | None:
        return str(pair.chunk.document.code) if pair.chunk else None


class DatasetViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Datasets of the signed-in user: documents go in, question-answer pairs come out."""

    serializer_class = DatasetSerializer
    lookup_field = "code"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Dataset.objects.none()
        return dataset_list_for_user(user=self.request.user)

    def get_object(self):
        dataset_get_for_user(user=self.request.user, code=self.kwargs["code"])  # 404 for strangers
        return self.get_queryset().get(code=self.kwargs["code"])

    def perform_create(self, serializer):
        try:
            dataset = dataset_create(owner=self.request.user, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise as_api_error(exc)
        serializer.instance = self.get_queryset().get(pk=dataset.pk)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: DocumentSerializer, 200: DocumentSerializer(many=True)})
    @action(detail=True, methods=["get", "post"])
    def documents(self, request, code=None):
        """GET lists the dataset's documents; POST uploads one (multipart field `file`) and queues its extraction."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        if request.method == "GET":
            return Response(DocumentSerializer(dataset.documents.select_related("job"), many=True).data)
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        try:
            document = document_upload(dataset=dataset, uploaded_file=upload.validated_data["file"])
        except DjangoValidationError as exc:
            raise as_api_error(exc)
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=QAPairSerializer(many=True))
    @action(detail=True, methods=["get"])
    def pairs(self, request, code=None):
        dataset = dataset_get_for_user(user=request.user, code=code)
        page = self.paginate_queryset(qa_pairs_for_dataset(dataset=dataset))
        return self.get_paginated_response(QAPairSerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def generate(self, request, code=None):
        """Queue a job that makes question-answer pairs from the extracted documents."""
        dataset = dataset_get_for_user(user=request.user, code=code)
        try:
            job = qa_generate_start(dataset=dataset)
        except DjangoValidationError as exc:
            raise as_api_error(exc)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
