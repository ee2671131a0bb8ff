"""The student edition's replacements compute what the library computes.

Where the student wheel withholds a function (it is an exercise's answer), a released chapter
runs an announced stand-in until the learner's answer passes, then the answer itself
(:mod:`flashtrade_lib.exercises.answers`). Here chapter 4's backward preprocess: the stand-in
and the reference answer, adopted, must give the library's ``D`` and, through the whole
backward, the library's gradients. Triton's interpreter must be switched on before the kernels
are defined, so the comparison runs in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r'''
import json, torch
from flashtrade_lib.course.solutions import load
from flashtrade_lib.exercises import answers
from flashtrade_lib.kernels import flash_attention as fa

torch.manual_seed(0)
q, k, v, do = (torch.randn(2, 3, 70, 24) for _ in range(4))  # a partial row tile, head dim not a power of two
library_delta = fa.backward_delta
o, L = fa.flash_attention_forward(q, k, v, causal=True)
want_delta = library_delta(o, do)
want_grads = fa.flash_attention_backward(q, k, v, o, L, do, causal=True)
out = {"library": fa.backward_delta is library_delta}
for name, install in (("stand_in", lambda: answers.stand_in("ch04-bwd-preprocess")),
                      ("adopted", lambda: answers.adopt("ch04-bwd-preprocess", load()["ch04-bwd-preprocess"].build()))):
    fn = install()
    grads = fa.flash_attention_backward(q, k, v, o, L, do, causal=True)
    out[name] = {"installed": fa.backward_delta is fn,
                 "delta": float((fn(o, do) - want_delta).abs().max()),
                 "grads": max(float((g - w).abs().max()) for g, w in zip(grads, want_grads))}
print(json.dumps(out))
'''


def test_backward_preprocess_stand_in_and_adopted_answer_match_the_library() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    env.pop("NBGRADER_EXECUTION", None)  # adopt() would install the stand-in under autograding
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["library"]
    for name in ("stand_in", "adopted"):
        assert out[name]["installed"], f"{name} was not installed on the kernels module"
        assert out[name]["delta"] < 1e-5, out
        assert out[name]["grads"] < 1e-5, out


def test_released_notebooks_link_no_page_of_the_book() -> None:
    """The release ships chapters without book/: a link there would be dead in the learner's JupyterLab."""
    from flashtrade_lib.course.release import all_chapters, source_notebook

    linked = [path.name for path in all_chapters().values() if "](../book/" in path.read_text()]
    assert linked, "no chapter links the book any more: this test no longer tests anything"
    for path in all_chapters().values():
        released = source_notebook(path)
        dead = [c.source for c in released.cells if c.cell_type == "markdown" and "](../" in c.source]
        assert not dead, f"{path.name}: the release keeps a link into the repository: {dead[0][:200]}"
