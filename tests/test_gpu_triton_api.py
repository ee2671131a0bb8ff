"""The kernels and the GPU benchmark use only Triton APIs that triton 3.6 has, as well as the pinned version.

The GPU machines this book is checked on come with their own triton (3.6, beside torch 2.11
for CUDA 13), older than the version pinned here. An API that only the pinned version has
would fail there at the first launch, in the middle of a lent GPU's few minutes. So this test
reads every ``triton.*`` / ``tl.*`` name (and the keyword arguments given to them) that
``kernels/`` and ``benchmarks/gpu_attention.py`` use, and looks each up

* in ``tests/triton_3.6_api.json`` — the public names and call signatures of triton 3.6.0,
  written by this file run as a script in a throwaway environment with that version
  (``pip install --no-deps triton==3.6.0`` into a fresh venv, then
  ``python tests/test_gpu_triton_api.py > tests/triton_3.6_api.json``);
* in the installed (pinned) triton, by the same function.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*sorted((ROOT / "kernels").glob("*.py")), ROOT / "benchmarks" / "gpu_attention.py"]
TABLE = Path(__file__).resolve().parent / "triton_3.6_api.json"
NAMESPACES = ("triton", "triton.language", "triton.language.math", "triton.testing",
              "triton.runtime.interpreter", "triton.compiler", "triton.backends.compiler")


def api_table() -> dict:
    """Public names of each namespace and the parameter names of every callable in them (this triton)."""
    import triton

    table: dict = {"version": triton.__version__, "names": {}, "params": {}}
    for ns in NAMESPACES:
        module = importlib.import_module(ns)
        names = sorted(n for n in dir(module) if not n.startswith("_") or n == "__version__")
        table["names"][ns] = names
        for n in names:
            obj = getattr(module, n, None)
            target = obj.__init__ if inspect.isclass(obj) else obj
            try:
                table["params"][f"{ns}.{n}"] = sorted(inspect.signature(target).parameters)
            except (TypeError, ValueError):
                continue
    return table


def used_apis(paths: list[Path]) -> dict[str, set[str]]:
    """Every ``triton...``/``tl...`` dotted name the files use, with the keyword arguments passed to it."""
    used: dict[str, set[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text())
        alias: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("triton"):
                        alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("triton"):
                for a in node.names:
                    alias[a.asname or a.name] = f"{node.module}.{a.name}"
                    used.setdefault(f"{node.module}.{a.name}", set())

        def dotted(node: ast.AST, alias: dict[str, str] = alias) -> str | None:
            parts = []
            while isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name) and node.id in alias:
                return ".".join([alias[node.id], *reversed(parts)])
            return None

        for node in ast.walk(tree):  # local aliases: `C = triton.Config`
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = dotted(node.value)
                if name:
                    alias[node.targets[0].id] = name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                name = dotted(node)
                if name:
                    used.setdefault(name, set())
            if isinstance(node, ast.Call):
                name = dotted(node.func) if isinstance(node.func, ast.Attribute) else (
                    alias.get(node.func.id) if isinstance(node.func, ast.Name) else None)
                if name:
                    used.setdefault(name, set()).update(k.arg for k in node.keywords if k.arg)
    return used


def _missing(used: dict[str, set[str]], table: dict) -> list[str]:
    """Names (or keyword arguments) that ``table`` does not have, resolving names down their namespaces."""
    problems = []
    for name, keywords in sorted(used.items()):
        ns = max((n for n in NAMESPACES if name.startswith(n + ".")), key=len, default=None)
        if ns is None:
            continue  # `triton` itself
        head = name[len(ns) + 1:].split(".")[0]
        if head in NAMESPACES_SUFFIX.get(ns, ()):
            continue
        if head not in table["names"][ns]:
            problems.append(f"{name}: triton {table['version']} has no {ns}.{head}")
            continue
        params = table["params"].get(f"{ns}.{head}")
        if params is not None and "kwargs" not in params:
            problems += [f"{name}(…, {k}=…): triton {table['version']} does not take {k!r}"
                         for k in sorted(keywords - set(params))]
    return problems


# sub-namespaces reached through a parent (``tl.math.exp2`` is looked up in triton.language.math)
NAMESPACES_SUFFIX = {"triton": ("language", "testing", "runtime", "compiler", "backends"),
                     "triton.language": ("math",)}


def test_the_scan_finds_what_the_kernels_use():
    used = used_apis(SOURCES)
    for name in ("triton.jit", "triton.autotune", "triton.Config", "triton.language.dot", "triton.language.math.exp2",
                 "triton.testing.do_bench", "triton.runtime.interpreter.InterpretedFunction"):
        assert name in used, f"the scan missed {name}: {sorted(used)}"
    assert {"warmup", "rep", "grad_to_none", "return_mode"} <= used["triton.testing.do_bench"]
    assert {"num_warps", "num_stages"} <= used["triton.Config"]  # through the alias `C = triton.Config`


def test_uses_only_apis_triton_3_6_has():
    table = json.loads(TABLE.read_text())
    assert table["version"] == "3.6.0"
    assert _missing(used_apis(SOURCES), table) == []


def test_uses_only_apis_the_pinned_triton_has():
    assert _missing(used_apis(SOURCES), api_table()) == []


def test_the_check_catches_a_missing_api():
    table = json.loads(TABLE.read_text())
    assert _missing({"triton.language.no_such_op": set()}, table)
    assert _missing({"triton.testing.do_bench": {"no_such_keyword"}}, table)


if __name__ == "__main__":
    json.dump(api_table(), sys.stdout, indent=0, sort_keys=True)
    print()
