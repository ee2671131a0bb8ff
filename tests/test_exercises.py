"""Every exercise check passes its instructor solution and fails each typical wrong answer with
the message meant for it; the book's solution blocks are the registered solutions."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from flashtrade_lib.attention.reference import tiled_attention
from flashtrade_lib.course import blocks
from flashtrade_lib.course.solutions import load
from flashtrade_lib.exercises import MAX_HINTS, Feedback, check, exercises, hint
from flashtrade_lib.exercises.attention_cases import attention_cases, max_error

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALL = exercises()
SOLUTIONS = load()
WRONGS = [(eid, w) for eid, sol in sorted(SOLUTIONS.items()) for w in sol.wrongs]


def test_there_are_exercises() -> None:
    assert "ch00-cores" in ALL and "ch02-tiled-forward" in ALL


def test_every_exercise_has_a_solution_and_a_wrong_answer() -> None:
    assert set(SOLUTIONS) == set(ALL), "course/solutions/ and the graders must cover the same exercises"
    assert all(SOLUTIONS[eid].wrongs for eid in ALL), [eid for eid in ALL if not SOLUTIONS[eid].wrongs]


@pytest.mark.parametrize("exercise_id", sorted(ALL))
def test_solution_passes(exercise_id: str) -> None:
    feedback = check(exercise_id, SOLUTIONS[exercise_id].build())
    assert isinstance(feedback, Feedback)
    assert feedback.passed, f"{exercise_id}: the reference solution fails: {feedback.message}"


@pytest.mark.parametrize("exercise_id, wrong", WRONGS, ids=[w.name for _, w in WRONGS])
def test_wrong_answer_fails_with_its_message(exercise_id: str, wrong) -> None:  # noqa: ANN001
    feedback = check(exercise_id, wrong.build())
    assert not feedback.passed, f"{exercise_id}: {wrong.name} passes"
    assert wrong.expect in feedback.message, f"{wrong.name}: expected {wrong.expect!r} in {feedback.message!r}"


@pytest.mark.parametrize("exercise_id", ["ch02-tiled-forward", "ch03-tiled-backward"])
def test_naive_attention_fails_because_it_materialises_the_scores(exercise_id: str) -> None:
    """The naive answers compute the right numbers (checked here) and fail only on memory."""
    naive = next(w for w in SOLUTIONS[exercise_id].wrongs if "materialises" in w.expect).build()
    right = SOLUTIONS[exercise_id].build()
    for case in attention_cases():
        if exercise_id == "ch02-tiled-forward":
            args = (case.q, case.k, case.v, case.block_q, case.block_k)
        else:
            o, lse = tiled_attention(case.q, case.k, case.v, causal=case.causal, mask=case.mask, return_lse=True)
            args = (case.q, case.k, case.v, o, lse, np.ones_like(o), case.block_q, case.block_k)
        with np.errstate(all="ignore"):
            got = naive(*args, causal=case.causal, mask=case.mask)
            want = right(*args, causal=case.causal, mask=case.mask)
        assert all(max_error(np.asarray(g), np.asarray(w)) < 1e-9 for g, w in zip(got, want, strict=True)), case.name
    feedback = check(exercise_id, naive)
    assert not feedback.passed and "materialises a 512×512 score matrix: that is naive attention" in feedback.message


def test_hints_are_revealed_one_at_a_time_and_never_show_the_answer() -> None:
    for eid, exercise in ALL.items():
        assert len(exercise.hints) <= MAX_HINTS
        answer_lines = {line.strip() for line in SOLUTIONS[eid].source.splitlines() if len(line.strip()) >= 25}
        assert not any(line in h for h in exercise.hints for line in answer_lines), f"{eid}: a hint shows the answer"
    for eid in ("ch02-tile-update", "ch02-tiled-forward", "ch03-tiled-backward", "ch04-kernel-inner-loop"):
        hints = ALL[eid].hints
        assert len(hints) == MAX_HINTS
        before = check(eid, None).message
        assert f"hint({eid!r})` reveals hint 1 of 3" in before
        shown = [hint(eid) for _ in range(MAX_HINTS + 1)]
        assert [h.number for h in shown] == [1, 2, 3, 3] and shown[1].text == hints[1]
        assert "reveals hint" not in check(eid, None).message  # all three are out


def test_unknown_exercise_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="ch00-cores"):
        check("no-such-exercise", 1)


def test_an_answer_that_raises_is_feedback_not_a_crash() -> None:
    def sweep_seconds(jobs, seconds_each, workers, budget):  # noqa: ANN001, ANN202
        raise RuntimeError("learner bug")

    feedback = check("ch00-cores", sweep_seconds)
    assert not feedback.passed and "RuntimeError" in feedback.message and "learner bug" in feedback.message


# ------------------------------------------------------------------ the book's solution blocks


def test_every_solution_block_shows_the_registered_solution(tmp_path: Path) -> None:
    """Rendering the blocks from course/solutions/ changes nothing: the book cannot drift from the tests."""
    seen = set()
    for path in NOTEBOOKS:
        for block in blocks.solution_blocks(path):
            assert block.exercise_id in SOLUTIONS, f"{path.name}: no registered solution for {block.exercise_id}"
            assert block.code is not None, f"{path.name}: the {block.exercise_id} block shows no python code"
            seen.add(block.exercise_id)
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        assert not blocks.render_notebook(copy, SOLUTIONS), (
            f"{path.name}: a solution block differs from course/solutions/ — run "
            "`python -m flashtrade_lib.course sync-solutions`")
    assert seen == set(SOLUTIONS), f"exercises without a solution block: {sorted(set(SOLUTIONS) - seen)}"


REVEALS = {  # the exercise comes before the cell that shows the library's version
    "ch02-tiled-forward": ("02_online_softmax.ipynb", "show_source(tiled_attention)"),
    "ch02-tile-update": ("02_online_softmax.ipynb", "show_source(tiled_attention)"),
    "ch03-tiled-backward": ("03_backward_recomputation.ipynb", "show_source(tiled_attention_backward)"),
    "ch04-kernel-inner-loop": ("04_gpu_kernels.ipynb", "show_source(fa._attn_fwd_inner.fn)"),
}


@pytest.mark.parametrize("exercise_id", sorted(REVEALS))
def test_try_it_then_read_ours(exercise_id: str) -> None:
    import nbformat

    name, reveal = REVEALS[exercise_id]
    cells = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
    asked = next(i for i, c in enumerate(cells) if f"check({exercise_id!r}" in c.source.replace('"', "'"))
    shown = next(i for i, c in enumerate(cells) if c.source.strip() == reveal)
    assert asked < shown, f"{exercise_id} is asked after the library's version is shown"


def test_no_test_imports_private_exercise_code() -> None:
    """Tests take solutions from course/solutions/ (flashtrade_lib.course.solutions.load), never the package."""
    private = re.compile(r"from flashtrade_lib\.exercises\.\w+ import [^\n]*\b_\w+")
    offenders = [p.name for p in (ROOT / "tests").glob("*.py") if private.search(p.read_text())]
    assert not offenders, f"tests importing private exercise code: {offenders}"


# ------------------------------------------------------- a check reports; only the autograder stops


def test_autograder_cell_reports_in_a_notebook_and_scores_0_under_nbgrader(monkeypatch) -> None:
    from flashtrade_lib.exercises import autograde

    def stub(x):  # an untouched stub: the released notebook's answer before the learner writes it
        m, ell = float("-inf"), 0.0
        return m, ell

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = autograde("ch02-online-softmax", "online_softmax_stats", {"online_softmax_stats": stub})
    assert not shown.passed and "0 of 1 point so far (the chapter goes on)" in shown.message
    assert "✘ Not yet." in shown._repr_html_() and "#cf222e" in shown._repr_html_()  # visibly a failure
    missing = autograde("ch02-online-softmax", "online_softmax_stats", {})
    assert not missing.passed and "not defined" in missing.message
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError) as raised:
        autograde("ch02-online-softmax", "online_softmax_stats", {"online_softmax_stats": stub})
    assert check("ch02-online-softmax", stub).message.split(" Stuck?")[0] in str(raised.value)
    with pytest.raises(NameError, match="name 'online_softmax_stats' is not defined"):
        autograde("ch02-online-softmax", "online_softmax_stats", {})
    right = SOLUTIONS["ch02-online-softmax"].build()
    assert autograde("ch02-online-softmax", "online_softmax_stats", {"online_softmax_stats": right}).passed


def test_an_exception_names_the_case_and_the_learners_line() -> None:
    def my_tiled_attention(q, k, v, block_q, block_k, causal=False, mask=None):
        o = q + np.zeros((0, q.shape[-1]))  # a broadcasting mistake
        return o, o

    message = check("ch02-tiled-forward", my_tiled_attention).message
    assert "case 1 of 10 (blocks divide N: q(16, 4)" in message and "ValueError" in message
    assert "in my_tiled_attention, at `o = q + np.zeros((0, q.shape[-1]))  # a broadcasting mistake`" in message


def _stubs() -> list[tuple[str, str, str]]:
    """(exercise id, answer name, the stub function's source) of every check cell that defines a function."""
    import ast

    import nbformat

    from flashtrade_lib.exercises.stubs import CHECK_CALL, whole_lines

    found = []
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, 4).cells:
            for match in CHECK_CALL.finditer(cell.source) if cell.cell_type == "code" else ():
                tree = ast.parse(cell.source)
                for node in tree.body:
                    if isinstance(node, ast.FunctionDef) and node.name == match["answer"]:
                        found.append((match["id"], node.name, whole_lines(cell.source, node)))
    return found


STUBS = _stubs()


@pytest.mark.parametrize("exercise_id, name, source", STUBS, ids=[s[0] for s in STUBS])
def test_every_check_recognises_its_untouched_stub(exercise_id: str, name: str, source: str, tmp_path: Path) -> None:
    import importlib.util

    import torch

    from flashtrade_lib.exercises.ch04 import triton_interpreter

    path = tmp_path / f"stub_{name}.py"  # from a file, as Triton needs (it reads the kernel's source)
    path.write_text("import math\n\nimport numpy as np\nimport pandas as pd\nimport triton\nimport triton.language as tl\n"
                    "from numpy import ndarray\n\n\n" + source + "\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    with triton_interpreter(on=not torch.cuda.is_available()):
        spec.loader.exec_module(module)
    feedback = check(exercise_id, getattr(module, name))
    assert not feedback.passed and "still the stub the chapter gave you" in feedback.message, feedback.message
