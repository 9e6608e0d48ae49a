from django.contrib import admin

from apps.datasets.models import Chunk, Dataset, Document, QAPair


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["name", "code", "owner__email"]
    readonly_fields = ["code"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["filename", "dataset", "owner", "format", "size", "status", "created_at"]
    list_filter = ["status", "format", "created_at"]
    search_fields = ["filename", "code", "owner__email"]
    readonly_fields = ["code", "job"]
    raw_id_fields = ["dataset"]


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "index", "char_start", "char_end", "page"]
    search_fields = ["document__filename", "text"]
    raw_id_fields = ["document"]


@admin.register(QAPair)
class QAPairAdmin(admin.ModelAdmin):
    list_display = ["question", "dataset", "source", "created_at"]
    list_filter = ["source", "created_at"]
    search_fields = ["question", "answer", "dataset__name"]
    raw_id_fields = ["dataset", "chunk"]
