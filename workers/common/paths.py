"""Folders of the project itself, found from this file: data shipped with it, and the root that child processes
(the extraction sandbox, the device probe, the GGUF converter) run from."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_ROOT / "data"
