from django.contrib import admin

from apps.datasets.models import Chunk, Dataset, DatasetVersion, Document, QAPair, VersionExample


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["name", "code", "owner__email"]
    readonly_fields = ["code"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["filename", "dataset", "owner", "format", "size", "status", "created_at"]
    # The status is read from the document's job (Document.status), so the filter is on the job's.
    list_filter = ["job__status", "format", "created_at"]
    list_select_related = ["dataset", "owner", "job"]
    search_fields = ["filename", "code", "owner__email"]
    readonly_fields = ["code", "job"]
    raw_id_fields = ["dataset"]

    @admin.display(description="status")
    def status(self, document):
        return document.status_display


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "index", "char_start", "char_end", "page"]
    search_fields = ["document__filename", "text"]
    raw_id_fields = ["document"]


@admin.register(QAPair)
class QAPairAdmin(admin.ModelAdmin):
    list_display = ["question", "dataset", "source", "rating", "excluded", "updated_at"]
    list_filter = ["source", "excluded", "created_at"]
    search_fields = ["question", "answer", "system", "dataset__name"]
    raw_id_fields = ["dataset", "document", "chunk"]


class VersionExampleInline(admin.TabularInline):
    """A version's examples, read-only: a frozen version never changes, not even from the admin."""

    model = VersionExample
    fields = ["position", "question", "answer", "system", "source", "document"]
    readonly_fields = fields
    ordering = ["position"]
    extra = 0
    max_num = 0
    show_change_link = True
    can_delete = False


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "dataset", "owner", "number", "example_count", "note", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["dataset__name", "code", "note", "owner__email"]
    readonly_fields = ["code", "owner", "dataset", "number", "example_count", "created_at"]
    fields = ["code", "owner", "dataset", "number", "note", "example_count", "created_at"]
    inlines = [VersionExampleInline]

    def has_add_permission(self, request):
        return False  # versions are frozen by the service, which copies the pairs


@admin.register(VersionExample)
class VersionExampleAdmin(admin.ModelAdmin):
    list_display = ["question", "version", "position", "source"]
    list_filter = ["source", "version__created_at"]
    search_fields = ["question", "answer", "version__dataset__name", "version__code"]
    readonly_fields = ["version", "position", "system", "question", "answer", "source", "document", "chunk"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
