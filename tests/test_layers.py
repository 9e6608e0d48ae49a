"""The layers hold mechanically (README: Architecture): import-linter's contracts in pyproject.toml, a web process
started from nothing that loads neither torch, transformers and numpy nor the engine or the worker side, and no
import cycle between modules."""
import json
import subprocess
import sys
from pathlib import Path

import grimp

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


# ---------------------------------------------------------------------------------------------- no import cycles

# Every import counts, one inside a function too (as grimp and import-linter see them): deferring an import hides a
# cycle from Python at start-up, not from whoever reads the code. Two modules that need each other want what they
# share moved into a lower module.
PACKAGES = ("apps", "workers", "garage")


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that import one another, directly or through each other: the strongly connected
    components of more than one module (Tarjan's algorithm), each sorted, in order of their first module."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module: str) -> None:  # recursion as deep as the longest import chain: a few dozen modules
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:  # the first module of its component: the component is on the stack above it
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(cycles)


def cycles_message(graph: grimp.ImportGraph, cycles: list[list[str]]) -> str:
    """Each cycle's modules, and the imports between them with their lines: what to untangle."""
    lines = [f"{len(cycles)} import cycle(s) between modules:"]
    for modules in cycles:
        lines.append(f"- {', '.join(modules)}")
        for importer in modules:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & set(modules)):
                where = "; ".join(f"line {detail['line_number']}: {detail['line_contents']}"
                                  for detail in graph.get_import_details(importer=importer, imported=imported))
                lines.append(f"    {importer} -> {imported} ({where})")
    return "\n".join(lines)


def project_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)


def test_it_has_no_import_cycle_between_modules():
    graph = project_graph()
    cycles = import_cycles(graph)
    assert cycles == [], cycles_message(graph, cycles)


def test_it_would_see_an_import_cycle():
    """The check above can fail: on a small graph it finds each cycle and nothing else, and in the project's graph it
    finds the cycle one more import would make (a model that asks a selector, which reads the models)."""
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a"), ("p.c", "p.e"),
                               ("p.e", "p.f"), ("p.f", "p.e")]:
        graph.add_import(importer=importer, imported=imported, line_number=7, line_contents=f"import {imported}")
    assert import_cycles(graph) == [["p.a", "p.b", "p.c"], ["p.e", "p.f"]]
    message = cycles_message(graph, import_cycles(graph))
    assert message.startswith("2 import cycle(s)") and "- p.a, p.b, p.c" in message
    assert "    p.c -> p.a (line 7: import p.a)" in message and "p.d" not in message

    graph = project_graph()
    graph.add_import(importer="apps.core.models", imported="apps.core.selectors", line_number=1,
                     line_contents="from apps.core.selectors import job_waiting")
    assert any({"apps.core.models", "apps.core.selectors"} <= set(cycle) for cycle in import_cycles(graph))
