"""The benchmarks are a package run with ``python -m benchmarks.<name>``: no file edits sys.path, no benchmark
imports another (shared code lives in benchmarks/common; independent_motions is a data source they may
import), and every runnable one starts and parses its arguments."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
SHARED = "benchmarks.common"
DATA_SOURCES = ("benchmarks.independent_motions",)  # renderers the benchmarks draw queries from


def benchmark_files() -> list[Path]:
    return sorted(BENCHMARKS.rglob("*.py"))


def module_name(path: Path) -> str:
    """benchmarks/common/runs.py → benchmarks.common.runs (a package's __init__ keeps its name, so that its
    relative imports resolve inside the package)."""
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def imported_benchmark_modules(source: str, module: str) -> set[str]:
    """Every ``benchmarks.…`` module that ``module``'s source imports (at the top or inside a function; relative
    imports resolved; ``from benchmarks import x`` counts as importing benchmarks.x)."""
    package = module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base == "benchmarks":
                found.update(f"{base}.{alias.name}" for alias in node.names)
            else:
                found.add(base)
    return {name for name in found if name == "benchmarks" or name.startswith("benchmarks.")}


def forbidden_imports(source: str, module: str) -> list[str]:
    """What ``module`` imports beyond the shared helpers (and, for a benchmark, the data sources)."""
    allowed = [SHARED] if module == SHARED or module.startswith(SHARED + ".") else [SHARED, *DATA_SOURCES]
    return sorted(name for name in imported_benchmark_modules(source, module)
                  if not any(name == ok or name.startswith(ok + ".") for ok in allowed))


def sys_path_lines(source: str) -> list[int]:
    """Lines that touch ``sys.path`` (insert, append, assignment: any use of it)."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and node.attr == "path"
            and isinstance(node.value, ast.Name) and node.value.id == "sys"]


def runnable_benchmarks() -> list[str]:
    """Every module directly under benchmarks/: each is a command (benchmarks/common holds what they share)."""
    return [module_name(path) for path in sorted(BENCHMARKS.glob("*.py")) if path.name != "__init__.py"]


def test_the_scan_refuses_what_it_must_and_sees_every_file():
    names = {module_name(path) for path in benchmark_files()}
    assert {"benchmarks.bench_curation", "benchmarks.bench_counterfactual", "benchmarks.common.curation",
            "benchmarks.common.results", "benchmarks.update_docs"} <= names
    bench = "benchmarks.bench_denoising"
    assert sys_path_lines("import sys\nROOT = 1\nsys.path.insert(0, str(ROOT))\n") == [3]
    assert forbidden_imports("from benchmarks.bench_generation import fit_classifier", bench) == [
        "benchmarks.bench_generation"]
    assert forbidden_imports("from benchmarks import bench_generation", bench) == ["benchmarks.bench_generation"]
    assert forbidden_imports("def f():\n    from . import bench_curation\n", bench) == ["benchmarks.bench_curation"]
    assert forbidden_imports("from benchmarks.independent_motions import render_motion", "benchmarks.common.queries") \
        == ["benchmarks.independent_motions"]
    assert forbidden_imports("from .common.results import save\nfrom benchmarks.independent_motions import "
                             "render_motion", bench) == []


def test_no_benchmark_edits_sys_path():
    offenders = {str(path.relative_to(REPO)): lines for path in benchmark_files()
                 if (lines := sys_path_lines(path.read_text()))}
    assert not offenders, f"these files touch sys.path (run them with python -m from the repository root): {offenders}"


def test_benchmarks_import_only_the_shared_helpers_and_the_data_sources():
    offenders = {str(path.relative_to(REPO)): bad for path in benchmark_files()
                 if (bad := forbidden_imports(path.read_text(), module_name(path)))}
    assert not offenders, f"benchmark modules import other benchmarks (move what they share to {SHARED}): {offenders}"


# Runs each module as ``python -m <module> --help`` would (runpy, as __main__), all in one interpreter so that
# torch is imported once: seventeen interpreters would take minutes on a loaded 2-core machine.
HELP_ALL = """
import contextlib, io, json, runpy, sys
results = {}
for module in sys.argv[1:]:
    sys.argv = [module, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    except Exception as error:
        code, _ = 1, out.write(f"{type(error).__name__}: {error}")
    results[module] = [code, out.getvalue()]
print(json.dumps(results))
"""


def test_every_runnable_benchmark_starts_with_help():
    modules = runnable_benchmarks()
    assert len(modules) >= 15 and "benchmarks.bench_retrieval" in modules
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    run = subprocess.run([sys.executable, "-c", HELP_ALL, *modules], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    failed = {m: output[-800:] for m, (code, output) in results.items() if code != 0 or "usage:" not in output}
    assert set(results) == set(modules) and not failed, "--help failed:\n" + "\n".join(
        f"{m}:\n{o}" for m, o in failed.items())


@pytest.mark.parametrize("folder", ["docs", "benchmarks"])
def test_no_text_runs_a_benchmark_as_a_script(folder):
    """Run as files, the benchmarks cannot import benchmarks.common; every command written down uses -m."""
    pattern = re.compile(r"python3? benchmarks/\w+\.py")
    offenders = [f"{path.relative_to(REPO)}: {match.group(0)}" for path in sorted((REPO / folder).rglob("*"))
                 if path.suffix in (".md", ".py") and "cache" not in path.parts
                 for match in pattern.finditer(path.read_text())]
    assert not offenders, "\n".join(offenders)
