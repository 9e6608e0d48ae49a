"""`garage extract FILE... [--json]`: extract and chunk documents without the database, as the worker would.

Prints one JSON object per file (file, ok, format, pages, chars, chunks, seconds, error, ...) or a table. Exit
status 0 when every file was read, 2 when any was rejected with a readable error, 1 only for an internal bug."""
import json
import sys
import time
import traceback
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from workers.engine.data.chunking import chunk_text, load_tokenizer_counter
from workers.common.errors import ReadableError
from workers.engine.extract import extract_file, extract_isolated


class Command(BaseCommand):
    help = "Extract text from documents and chunk it (no database); one JSON line per file with --json."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="PDF, DOCX, PPTX, TXT, MD, HTML, CSV, JSON or JSONL files")
        parser.add_argument("--json", action="store_true", help="Print one JSON object per file, each on its own line.")
        parser.add_argument("--chunk-tokens", type=int, default=None, help="Chunk size in tokens (GARAGE_CHUNK_TOKENS).")
        parser.add_argument("--overlap-tokens", type=int, default=None,
                            help="Chunk overlap in tokens (GARAGE_CHUNK_OVERLAP_TOKENS).")
        parser.add_argument("--tokenizer", default=None,
                            help="Count tokens with this tokenizer (a local folder or a cached Hugging Face id).")
        parser.add_argument("--text", action="store_true", help="Also print each file's extracted text (JSON: key `text`).")
        parser.add_argument("--in-process", action="store_true",
                            help="Extract in this process instead of a separate, time- and memory-limited one.")

    def handle(self, *args, files, **options):
        from apps.datasets.services.documents import extract_limits

        limits = extract_limits()
        size = options["chunk_tokens"] or settings.GARAGE_CHUNK_TOKENS
        overlap = options["overlap_tokens"] if options["overlap_tokens"] is not None else settings.GARAGE_CHUNK_OVERLAP_TOKENS
        tokenizer = options["tokenizer"] if options["tokenizer"] is not None else settings.GARAGE_CHUNK_TOKENIZER
        count = load_tokenizer_counter(tokenizer) if tokenizer else None
        if tokenizer and count is None:
            return self._exit(2, f"No tokenizer '{tokenizer}' on this machine (a folder with tokenizer.json, or a cached id).")
        if not 0 <= overlap < size:
            return self._exit(2, "The overlap must be at least 0 and smaller than the chunk size.")
        run = extract_file if options["in_process"] or not settings.GARAGE_EXTRACT_ISOLATED else extract_isolated
        results, status = [], 0
        for name in files:
            result = self._one(name, run=run, limits=limits, size=size, overlap=overlap, count=count,
                               with_text=options["text"])
            if result["ok"] is None:  # internal bug: keep going, but say so in the exit status
                result["ok"] = False
                status = 1
            elif not result["ok"] and status == 0:
                status = 2
            results.append(result)
            if options["json"]:
                self.stdout.write(json.dumps(result, ensure_ascii=False))
                self.stdout.flush()
        if not options["json"]:
            self._table(results)
        sys.exit(status)

    def _one(self, name: str, *, run, limits, size, overlap, count, with_text) -> dict:
        result = {"file": name, "ok": False, "format": None, "pages": 0, "chars": 0, "chunks": 0, "tokens": 0,
                  "tables": 0, "examples": None, "seconds": 0.0, "error": None}
        started = time.monotonic()
        path = Path(name)
        try:
            if not path.is_file():
                raise ReadableError(f"No such file: {name}")
            extracted = run(path, filename=path.name, limits=limits)
            chunks = chunk_text(extracted.text, size=size, overlap=overlap, count_tokens=count,
                                page_offsets=extracted.page_offsets)
        except ReadableError as exc:
            result["error"] = str(exc)
        except Exception as exc:
            # Our bug, not the file's fault: the details go to stderr, the line says only that it happened.
            self.stderr.write(f"{name}:\n{traceback.format_exc()}")
            result["ok"] = None
            result["error"] = f"Internal error while extracting this file ({type(exc).__name__})."
        else:
            result.update(ok=True, format=extracted.format, pages=extracted.pages, chars=extracted.chars,
                          chunks=len(chunks), tokens=sum(c.token_count for c in chunks), tables=extracted.tables,
                          examples=len(extracted.examples) if extracted.examples is not None else None)
            if with_text:
                result["text"] = extracted.text
        result["seconds"] = round(time.monotonic() - started, 4)
        return result

    def _table(self, results: list[dict]) -> None:
        width = max([len(r["file"]) for r in results] + [4])
        self.stdout.write(f"{'file':<{width}}  {'format':<8} {'pages':>6} {'chars':>10} {'chunks':>7} {'seconds':>8}  result")
        for r in results:
            outcome = "ok" if r["ok"] else r["error"]
            if r["ok"] and r["examples"]:
                outcome += f" ({r['examples']} training examples)"
            self.stdout.write(f"{r['file']:<{width}}  {r['format'] or '-':<8} {r['pages']:>6} {r['chars']:>10,} "
                              f"{r['chunks']:>7} {r['seconds']:>8.3f}  {outcome}")
            if r["ok"] and r.get("text") is not None:
                self.stdout.write(r["text"] + "\n")

    def _exit(self, status: int, message: str):
        self.stderr.write(message)
        sys.exit(status)
