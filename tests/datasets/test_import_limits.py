"""File imports run as jobs and read within limits: a few kilobytes of Parquet or JSON must not unpack into
gigabytes, and text that cannot be decoded ends in a readable error, never in a 500 or an internal error."""
import codecs
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import Document, QAPair
from tests.fixtures.jobs import run_job
from workers.jobs import INTERNAL_ERROR

pytestmark = pytest.mark.django_db


def parquet_bytes(table_data: dict, **options) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(table_data), buffer, **options)
    return buffer.getvalue()


@pytest.fixture
def dataset_code(alice_api):
    return alice_api.post("/api/v1/datasets/", {"name": "Imports"}, format="json").json()["code"]


def import_job(api, code, name, data) -> Job:
    response = api.post(f"/api/v1/datasets/{code}/import/", {"file": SimpleUploadedFile(name, data)}, format="multipart")
    assert response.status_code == 202, response.content
    return run_job(Job.objects.get(code=response.json()["code"]))


def assert_failed_readably(job: Job, *fragments: str):
    assert job.status == Job.Status.FAILED, job.result
    assert job.error_message != INTERNAL_ERROR and "Traceback" not in job.error_message
    for fragment in fragments:
        assert fragment in job.error_message, job.error_message
    assert not QAPair.objects.exists()
    assert Document.objects.get().status == Document.Status.FAILED


def test_it_refuses_a_parquet_file_that_unpacks_beyond_the_memory_limit(alice_api, dataset_code, settings):
    # 130 rows sharing one dictionary-encoded megabyte: under a kilobyte on disk, 130 MB once decoded, while the
    # footer claims only one megabyte of data.
    data = parquet_bytes({"question": ["q" * 1_000_000] * 130, "answer": ["a"] * 130}, compression="zstd")
    assert len(data) < 4096
    settings.GARAGE_IMPORT_MAX_MB = 32
    job = import_job(alice_api, dataset_code, "bomb.parquet", data)
    assert_failed_readably(job, "'bomb.parquet' holds more than 32 MB of data once unpacked", "GARAGE_IMPORT_MAX_MB")


def test_it_refuses_a_parquet_file_with_too_many_rows_from_its_footer(alice_api, dataset_code, settings):
    settings.GARAGE_IMPORT_MAX_ROWS = 10
    data = parquet_bytes({"question": [f"Q{i}?" for i in range(11)], "answer": ["A."] * 11})
    assert_failed_readably(import_job(alice_api, dataset_code, "rows.parquet", data),
                           "'rows.parquet' has 11 rows; imports take at most 10", "GARAGE_IMPORT_MAX_ROWS")


def test_it_imports_a_parquet_file_within_the_limits(alice_api, dataset_code, settings):
    settings.GARAGE_IMPORT_MAX_ROWS = 3000
    settings.GARAGE_IMPORT_MAX_MB = 1
    data = parquet_bytes({"question": [f"Q{i}?" for i in range(2500)], "answer": [f"A{i}." for i in range(2500)]},
                         row_group_size=700)
    job = import_job(alice_api, dataset_code, "fine.parquet", data)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.result["imported"] == 2500 and job.result["shape"] == "question_answer"
    assert Document.objects.get().status == Document.Status.READY and Document.objects.get().format == "parquet"


ROW = {"question": "Q?", "answer": "A."}


@pytest.mark.parametrize("name, data, fragments", [
    ("deep.json", b"[" * 200 + b"]" * 200, ("nested more than 32 levels deep",)),
    ("deeper.json", b"[" * 100_000 + b"]" * 100_000, ("nested",)),
    ("deep.jsonl", json.dumps(ROW).encode() + b"\n" + b'{"a": ' * 50 + b"1" + b"}" * 50 + b"\n", ("line 2 is nested more than 32",)),
    ("many.json", json.dumps([ROW] * 11).encode(), ("'many.json' has 11 rows; imports take at most 10", "GARAGE_IMPORT_MAX_ROWS")),
    ("many.jsonl", (json.dumps(ROW) + "\n").encode() * 11, ("'many.jsonl' has more rows than that; imports take at most 10",)),
    ("many.csv", b"question,answer\n" + b"Q?,A.\n" * 11, ("has more rows than that; imports take at most 10",)),
    ("wide.csv", b"question,answer\nQ?," + b"a" * 131_073 + b"\n", ("'wide.csv' has a field longer than 131,072 characters",)),
    ("big.jsonl", (json.dumps({"question": "Q?", "answer": "a" * 600_000}) + "\n").encode() * 2,
     ("holds more than 1 MB of data once unpacked", "GARAGE_IMPORT_MAX_MB")),
])
def test_it_refuses_json_and_csv_beyond_the_limits(alice_api, dataset_code, settings, name, data, fragments):
    settings.GARAGE_IMPORT_MAX_ROWS = 10
    settings.GARAGE_IMPORT_MAX_MB = 1 if name == "big.jsonl" else 16
    assert_failed_readably(import_job(alice_api, dataset_code, name, data), *fragments)


TEXT = '{"question": "Où?", "answer": "Là."}\n'


@pytest.mark.parametrize("name, data, fragments", [
    # A UTF-16 file cut in the middle of a character.
    ("cut16.jsonl", codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le") + b"\x41", ("UTF-16 byte order mark", f"byte {2 + 2 * len(TEXT):,} is not valid UTF-16")),
    # A lone surrogate after a UTF-16 byte order mark.
    ("surrogate.jsonl", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be") + b"\xd8\x00", ("UTF-16 byte order mark",)),
    # A code point past U+10FFFF after a UTF-32 byte order mark.
    ("beyond32.jsonl", codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le") + b"\x00\x00\x11\x00", ("UTF-32 byte order mark",)),
    ("be32.jsonl", codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be") + b"\x00\x00", ("UTF-32 byte order mark",)),
    # Bytes that are not UTF-8 after a UTF-8 byte order mark.
    ("latin.csv", codecs.BOM_UTF8 + "question,answer\nOù?,Là.\n".encode("latin-1"), ("UTF-8 byte order mark",)),
])
def test_it_explains_text_that_breaks_its_byte_order_mark(alice_api, dataset_code, name, data, fragments):
    job = import_job(alice_api, dataset_code, name, data)
    assert_failed_readably(job, f"'{name}' starts with a", "Save it again as UTF-8", *fragments)


@pytest.mark.parametrize("bom, encoding", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
                                           (codecs.BOM_UTF8, "utf-8")])
def test_it_imports_text_whose_byte_order_mark_holds(alice_api, dataset_code, bom, encoding):
    job = import_job(alice_api, dataset_code, "fine.jsonl", bom + TEXT.encode(encoding))
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert list(QAPair.objects.values_list("question", "answer")) == [("Où?", "Là.")]


def test_it_drops_nul_characters_from_imported_text(alice_api, dataset_code):
    job = import_job(alice_api, dataset_code, "nul.jsonl", b'{"question": "Wh\\u0000y?", "answer": "Be\\u0000cause."}\n')
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert list(QAPair.objects.values_list("question", "answer")) == [("Why?", "Because.")]
