"""`garage eval gsm8k --predictions FILE [--json] [--per-item OUT]`: grade a model's GSM8K completions.

FILE is JSON lines, each with `completion` (what the model wrote) and `answer` (the GSM8K answer text ending in
`#### <number>`, or a bare answer). Grading is workers.common.answers, the same as the benchmark jobs and the GRPO
rewards. Needs no database, no model and no torch, so it starts fast."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from workers.engine.evaluate.benchmarks import grade_predictions


def read_predictions(path: Path) -> list[dict]:
    """The rows of a predictions file; CommandError (exit status 2) with the line at fault otherwise."""
    if not path.is_file():
        raise CommandError(f"No such file: {path}", returncode=2)
    rows = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CommandError(f"Line {number} of {path.name} is not valid JSON ({exc.msg}).", returncode=2)
                if not isinstance(row, dict):
                    raise CommandError(f"Line {number} of {path.name} is not a JSON object.", returncode=2)
                missing = [name for name in ("completion", "answer") if name not in row]
                if missing:
                    raise CommandError(f"Line {number} of {path.name} has no {' and no '.join(repr(m) for m in missing)} "
                                       f"field; each line needs 'completion' and 'answer'.", returncode=2)
                if not isinstance(row["completion"], str):
                    raise CommandError(f"Line {number} of {path.name}: 'completion' must be text.", returncode=2)
                if not isinstance(row["answer"], (str, int, float)) or isinstance(row["answer"], bool):
                    raise CommandError(f"Line {number} of {path.name}: 'answer' must be text or a number.", returncode=2)
                rows.append({"completion": row["completion"], "answer": str(row["answer"])})
    except UnicodeDecodeError:
        raise CommandError(f"{path.name} is not UTF-8 text.", returncode=2)
    except OSError as exc:
        raise CommandError(f"Could not read {path}: {exc.strerror or exc}.", returncode=2)
    if not rows:
        raise CommandError(f"{path.name} is empty: it needs one JSON object per line.", returncode=2)
    return rows


class Command(BaseCommand):
    help = "Grade model completions against benchmark answers (garage eval gsm8k --predictions FILE --json)."
    # Grading needs no database: skip the system checks so the command starts in well under a second.
    requires_system_checks = []

    def add_arguments(self, parser):
        benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
        gsm8k = benchmarks.add_parser("gsm8k", help="Grade GSM8K completions: accuracy and format adherence.",
                                      description="Grade GSM8K completions. FILE: JSON lines with 'completion' and "
                                                  "'answer' (the GSM8K answer text with ####, or a bare number).")
        gsm8k.add_argument("--predictions", required=True, metavar="FILE", help="JSONL with completion and answer.")
        gsm8k.add_argument("--json", action="store_true", help="Print one JSON object (n, accuracy, format_rate, ...).")
        gsm8k.add_argument("--per-item", metavar="OUT", default=None,
                           help="Write one JSON line per input line: index, correct, extracted, formatted, reference.")

    def handle(self, *args, benchmark, predictions, per_item=None, **options):
        rows = read_predictions(Path(predictions))
        summary, items = grade_predictions(rows)
        if per_item:
            try:
                with open(per_item, "w", encoding="utf-8") as out:
                    for index, item in enumerate(items):
                        out.write(json.dumps({"index": index, "correct": item["correct"], "extracted": item["extracted"],
                                              "formatted": item["formatted"], "marker": item["marker"],
                                              "reference": item["reference"]}) + "\n")
            except OSError as exc:
                raise CommandError(f"Could not write {per_item}: {exc.strerror or exc}.", returncode=2)
        result = {"benchmark": benchmark, **summary}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"GSM8K: {summary['correct']} of {summary['n']} correct (accuracy {summary['accuracy']:.1%}).\n"
            f"Format: {round(summary['format_rate'] * summary['n'])} of {summary['n']} gave the answer with a final-answer "
            f"marker such as '#### 42' or \\boxed{{42}} ({summary['format_rate']:.1%}).\n"
            f"Mean completion length: {summary['mean_length_chars']:.0f} characters "
            f"({summary['mean_length_words']:.0f} words)."
            + (f"\nPer-item results: {per_item}" if per_item else "")
        )
