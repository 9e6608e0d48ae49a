"""A process of its own for tests/core/test_backup.py, on the scratch database and var folder its environment names
(DATABASE_URL, GARAGE_VAR_DIR): `seed` fills it with one user's real content; `inspect` prints it as one JSON object
(every row a backup holds, the checksum of every stored file, each saved provider key decrypted) for comparison."""
import hashlib
import io
import json
import os
import sys
import zipfile
from itertools import chain
from pathlib import Path

import django

GUIDE = """# Lumen Valley field guide

The lighthouse of Lumen Valley was built in 1887 by the glassmaker Ines Varga.
Its lamp burns rapeseed oil and can be seen from the Ormond ridge, eleven kilometres away.
The valley's river, the Sennet, freezes over in most Januaries.
"""
PAIRS = [("Who built the lighthouse of Lumen Valley?", "The glassmaker Ines Varga, in 1887."),
         ("What does the lighthouse lamp burn?", "Rapeseed oil."),
         ("From how far away can the lamp be seen?", "From the Ormond ridge, eleven kilometres away."),
         ("Which river runs through Lumen Valley?", "The Sennet, which freezes over in most Januaries.")]
PROVIDER_KEY = "sk-backup-test-0123456789abcdefXYZ"


def seed() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.accounts.models import User
    from apps.datasets.models import Chunk, QAPair
    from apps.datasets.services.curation import qa_pair_create
    from apps.datasets.services.documents import dataset_create, document_upload
    from apps.datasets.services.versions import dataset_version_freeze
    from apps.providers.services import provider_credential_create
    from apps.training.models import FineTune
    from apps.training.services import finetune_output_dir

    user = User.objects.create_user(email="alice@example.com", password="correct horse battery staple")
    dataset = dataset_create(owner=user, name="Lumen Valley", description="Questions about the valley — ünïcode too.")
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("guide.md", GUIDE.encode()),
                               start=False)
    chunk = Chunk.objects.create(document=document, index=0, text=GUIDE, char_start=0, char_end=len(GUIDE))
    question, answer = PAIRS[0]
    QAPair.objects.create(dataset=dataset, document=document, chunk=chunk, question=question, answer=answer)
    for question, answer in PAIRS[1:]:
        qa_pair_create(dataset=dataset, question=question, answer=answer)
    version = dataset_version_freeze(dataset=dataset, note="first", heldout_ratio=0.25)
    finetune = FineTune.objects.create(owner=user, name="Lumen tuned", dataset=dataset, version=version,
                                       base_model="tiny-gemma3", metrics={"loss_first": 2.5, "loss_last": 0.75})
    # A small adapter as training leaves one: its folder, and the zip of it that the row names.
    folder = finetune_output_dir(finetune) / "model"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}))
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(64 * 1024))
    archive = folder.parent / "lumen-tuned-lora.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
    finetune.artifact = archive.relative_to(finetune_output_dir(finetune).parent).as_posix()
    finetune.save(update_fields=["artifact"])
    provider_credential_create(owner=user, name="vLLM on the lab box", base_url="http://127.0.0.1:8000/v1",
                               model="google/gemma-3-4b-it", api_key=PROVIDER_KEY)


def inspect() -> dict:
    from django.conf import settings
    from django.core import serializers
    from django.core.files.storage import default_storage

    from apps.core.backup import backed_up_models
    from apps.core.crypto import DecryptionError, decrypt
    from apps.datasets.models import Document
    from apps.providers.models import ProviderCredential

    models = backed_up_models()
    rows = serializers.serialize("json", chain.from_iterable(m._base_manager.order_by("pk") for m in models),
                                 use_natural_foreign_keys=True)
    files = {}
    for document in Document.objects.all():
        with default_storage.open(document.file.name, "rb") as handle:
            files[f"media/{document.file.name}"] = hashlib.sha256(handle.read()).hexdigest()
    root = Path(settings.GARAGE_ARTIFACTS_DIR)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        files[f"artifacts/{path.relative_to(root).as_posix()}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    keys = {}
    for credential in ProviderCredential.objects.all():
        try:
            keys[credential.name] = decrypt(credential.api_key_encrypted)
        except DecryptionError:
            keys[credential.name] = None
    counts = {m._meta.label: m._base_manager.count() for m in models}
    return {"rows": json.loads(rows), "counts": {k: v for k, v in counts.items() if v}, "files": files, "keys": keys}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garage.settings")
    django.setup()
    if sys.argv[1] == "seed":
        seed()
    out = io.StringIO()
    json.dump(inspect(), out)
    print(out.getvalue())
