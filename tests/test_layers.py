"""The layers hold mechanically (README: Architecture): import-linter's contracts in pyproject.toml, and a web process
started from nothing that loads neither torch, transformers and numpy nor the engine or the worker side."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "numpy", "trl", "peft", "datasets", "accelerate", "workers.engine", "workers.tasks",
         "workers.jobs")

# What a web process loads: the ASGI application with its websocket routing, every URL's view, and the API schema
# (which imports every serializer). Prints the heavy modules that got loaded.
WEB_PROCESS = """
import json, sys
from garage.asgi import application
from django.urls import get_resolver
from drf_spectacular.generators import SchemaGenerator
get_resolver().url_patterns
SchemaGenerator().get_schema(request=None, public=True)
heavy = %r
print(json.dumps(sorted(name for name in sys.modules if any(name == h or name.startswith(h + ".") for h in heavy))))
""" % (HEAVY,)


def web_process_loads(tmp_path, before: str = "") -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "garage.settings", "GARAGE_VAR_DIR": str(tmp_path),
           "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", before + WEB_PROCESS], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_keeps_every_import_contract():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout[-6000:] + result.stderr[-2000:]


def test_it_starts_the_web_process_without_torch_numpy_or_the_engine(tmp_path):
    assert web_process_loads(tmp_path) == []


def test_it_would_see_a_heavy_module_in_the_web_process(tmp_path):
    """The check above can fail: the same probe, after an import of the engine, names what came with it."""
    loaded = web_process_loads(tmp_path, before="import workers.engine.data.curate\n")
    assert "numpy" in loaded and "workers.engine.data.curate" in loaded
