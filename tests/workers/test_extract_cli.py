"""`garage extract FILE... --json` in a subprocess, as a user runs it: one JSON line per file, exit 0 or 2."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import documents as fx

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"file", "ok", "format", "pages", "chars", "chunks", "seconds", "error"}


def garage_extract(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["GARAGE_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run([sys.executable, "-m", "garage.cli", "extract", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    csv = folder / "menu.csv"
    csv.write_bytes("Dish,Price\nCrème brûlée,4\n".encode("cp1252"))
    return [fx.text_pdf(folder / "guide.pdf"), fx.rich_docx(folder / "guide.docx"), fx.rich_pptx(folder / "talk.pptx"),
            ROOT / "samples" / "lumen-valley-field-guide.md", csv]


def test_it_prints_one_json_line_per_file_and_exits_0_when_all_are_read(tmp_path, good_files):
    done = garage_extract(tmp_path, *good_files, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in good_files]
    assert all(set(line) >= KEYS and line["ok"] is True and line["error"] is None for line in lines)
    assert [line["format"] for line in lines] == ["pdf", "docx", "pptx", "markdown", "csv"]
    assert [line["pages"] for line in lines] == [4, 2, 3, 1, 1]
    assert all(line["chars"] > 0 and line["chunks"] >= 1 and line["seconds"] > 0 for line in lines)
    assert lines[0]["tables"] == 1 and lines[1]["chunks"] == 1


def test_it_exits_2_and_says_why_for_each_rejected_file(tmp_path, good_files):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    locked = fx.encrypted_pdf(tmp_path / "locked.pdf")
    bomb = fx.with_extra_members(good_files[2], tmp_path / "bomb.pptx", count=5001)
    done = garage_extract(tmp_path, good_files[0], empty, locked, bomb, tmp_path / "missing.pdf", "--json")
    assert done.returncode == 2, done.stderr[-3000:]
    lines = {Path(line["file"]).name: line for line in map(json.loads, done.stdout.splitlines())}
    assert lines["guide.pdf"]["ok"] is True
    expected = {"empty.txt": "is empty", "locked.pdf": "password-protected", "bomb.pptx": "zip bomb",
                "missing.pdf": "No such file"}
    for name, phrase in expected.items():
        assert lines[name]["ok"] is False and phrase in lines[name]["error"] and lines[name]["format"] is None
    assert "Traceback" not in done.stdout + done.stderr


def test_it_prints_a_readable_table_without_json(tmp_path, good_files):
    done = garage_extract(tmp_path, good_files[1], "--chunk-tokens", "20", "--overlap-tokens", "5")
    assert done.returncode == 0, done.stderr[-3000:]
    header, row = done.stdout.splitlines()[:2]
    assert header.split() == ["file", "format", "pages", "chars", "chunks", "seconds", "result"]
    assert row.split()[1:3] == ["docx", "2"] and row.endswith("ok") and int(row.split()[4]) > 3
