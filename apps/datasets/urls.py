from django.urls import path

from apps.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<uuid:code>/", views.dataset_detail, name="detail"),
    path("<uuid:code>/delete/", views.dataset_delete_view, name="delete"),
    path("<uuid:code>/upload/", views.document_upload_view, name="upload"),
    path("<uuid:code>/generate/", views.generate_view, name="generate"),
    path("<uuid:code>/train/", views.train_view, name="train"),
    path("<uuid:code>/pairs/add/", views.pair_add, name="pair_add"),
    path("<uuid:code>/pairs/<int:pk>/edit/", views.pair_edit, name="pair_edit"),
    path("<uuid:code>/pairs/<int:pk>/delete/", views.pair_delete, name="pair_delete"),
    path("<uuid:code>/pairs/<int:pk>/restore/", views.pair_restore, name="pair_restore"),
    path("<uuid:code>/restore/", views.pairs_restore, name="pairs_restore"),
    path("<uuid:code>/curate/", views.curate_view, name="curate"),
    path("<uuid:code>/import/", views.import_view, name="import"),
    path("<uuid:code>/export/", views.export_view, name="export"),
    path("<uuid:code>/freeze/", views.version_freeze, name="freeze"),
    path("versions/<uuid:code>/", views.version_detail, name="version"),
    path("versions/<uuid:code>/note/", views.version_note, name="version_note"),
    path("versions/<uuid:code>/export/", views.version_export, name="version_export"),
    path("versions/<uuid:code>/train/", views.version_train, name="version_train"),
    path("documents/<uuid:code>/", views.document_detail, name="document"),
    path("documents/<uuid:code>/extract/", views.document_extract_again_view, name="document_extract"),
]
