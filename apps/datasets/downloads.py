"""The one place a dataset's JSONL export becomes an HTTP attachment, for the pages and the API alike."""
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from apps.datasets.selectors import export_examples, export_filename
from workers.common.records import jsonl_lines


def jsonl_response(*, dataset, style: str, version=None) -> StreamingHttpResponse:
    """A streamed JSONL attachment of a dataset's current pairs, or of a frozen version, in a known `style`.

    The file name comes from the dataset's name, which may hold any characters: Django builds the header (quoted
    ASCII, or RFC 5987 `filename*=` for other text), never string formatting."""
    lines = jsonl_lines(export_examples(dataset=dataset, version=version), style)
    response = StreamingHttpResponse((line.encode() for line in lines), content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        True, export_filename(dataset=dataset, style=style, version=version))
    return response
