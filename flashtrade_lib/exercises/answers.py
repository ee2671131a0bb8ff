"""The learner's answers in place of what the student edition withholds.

A released chapter goes on after its exercises: chapter 2's demos call ``tiled_attention``,
chapter 4 runs the Triton forward. In the student edition those library functions are
withheld (:mod:`flashtrade_lib.course.withhold`), so the release inserts two kinds of cells:

* ``tiled_attention = stand_in("ch02-tiled-forward")`` after the imports: until the exercise
  is done, a *stand-in* that computes the same result the plain way (the dense formula,
  materialising the ``N × N`` scores) and says so, loudly, every time it is installed;
* ``tiled_attention = adopt("ch02-tiled-forward", my_tiled_attention)`` after the
  exercise's check: the learner's own answer, wrapped to the library's signature, once it
  passes the check (otherwise the stand-in stays, with the reason).

Either is also installed on the library module, so library code and ``reference.tiled_attention``
in later cells use it too. The instructor's edition never runs these cells.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flashtrade_lib.exercises import check


def _prescaled(q: np.ndarray, scale: float | None) -> tuple[np.ndarray, float]:
    """``q`` scaled so that the default ``1/√d`` gives ``scale`` (an answer only knows the default)."""
    factor = 1.0 if scale is None else float(scale) * math.sqrt(q.shape[-1])
    return (q if factor == 1.0 else q * factor), factor


def _dense_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool,
                   mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(o, lse, p)`` from the dense formula (the grader's own reference)."""
    from flashtrade_lib.exercises.attention_cases import AttentionCase

    return AttentionCase("stand-in", q, k, v, 1, 1, causal, mask).expected()


def _forward_from(answer: Callable | None) -> Callable:
    def tiled_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, block_q: int = 128, block_k: int = 128,
                        causal: bool = False, mask: np.ndarray | None = None, scale: float | None = None,
                        return_lse: bool = False) -> Any:
        qs, _ = _prescaled(np.asarray(q), scale)
        if answer is None:
            o, lse, _ = _dense_forward(qs, k, v, causal, mask)
        else:
            o, lse = answer(qs, k, v, block_q, block_k, causal=causal, mask=mask)
        o, lse = np.asarray(o, dtype=np.asarray(q).dtype), np.asarray(lse, dtype=np.asarray(q).dtype)
        return (o, lse) if return_lse else o

    return tiled_attention


def _backward_from(answer: Callable | None) -> Callable:
    def tiled_attention_backward(q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray, lse: np.ndarray,
                                 do: np.ndarray, *, block_q: int = 128, block_k: int = 128, causal: bool = False,
                                 mask: np.ndarray | None = None, scale: float | None = None) -> tuple[np.ndarray, ...]:
        qs, factor = _prescaled(np.asarray(q), scale)
        if answer is None:  # the dense backward through the whole P
            _, _, p = _dense_forward(qs, k, v, causal, mask)
            sc = 1.0 / math.sqrt(q.shape[-1])
            dv = np.swapaxes(p, -1, -2) @ do
            dp = do @ np.swapaxes(v, -1, -2)
            ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True)) * sc
            dq, dk = ds @ k, np.swapaxes(ds, -1, -2) @ qs
        else:
            dq, dk, dv = answer(qs, k, v, o, lse, do, block_q, block_k, causal=causal, mask=mask)
        dtype = np.asarray(q).dtype
        return (np.asarray(dq, dtype=dtype) * factor, np.asarray(dk, dtype=dtype), np.asarray(dv, dtype=dtype))

    return tiled_attention_backward


def _kernel_forward_from(kernel: Any | None) -> Callable:
    import torch

    def flash_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                                scale: float | None = None,
                                blocks: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, h, nq, d = q.shape
        scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
        if kernel is None:  # dense: the whole score matrix, in float32 (outside autograd, as a kernel is)
            with torch.no_grad():
                s = (q.float() @ k.float().transpose(-1, -2)) * scale
                if causal:
                    s = s.masked_fill(~torch.ones_like(s, dtype=torch.bool).tril(), float("-inf"))
                lse = torch.logsumexp(s, dim=-1)
                return (torch.softmax(s, dim=-1) @ v.float()).to(q.dtype), lse
        from flashtrade_lib.exercises.ch04 import _launch

        bm, bn = blocks or (32, 32)
        flat = [t.reshape(b * h, t.shape[2], d).contiguous() for t in (q, k, v)]
        o, lse = _launch(kernel, *flat, causal, bm, bn, scale=scale)
        return o.reshape(b, h, nq, d), lse.reshape(b, h, nq)

    return flash_attention_forward


def _backward_delta_from(kernel: Any | None) -> Callable:
    import torch

    def backward_delta(o: torch.Tensor, do: torch.Tensor) -> torch.Tensor:
        if kernel is None:  # one PyTorch expression: the same numbers, no kernel
            return (o.float() * do.float()).sum(dim=-1)
        import triton

        b, h, n, d = o.shape
        width = max(16, triton.next_power_of_2(d))  # tl.arange needs a power of two; zero columns add nothing
        o_rows, do_rows = (torch.nn.functional.pad(t.float(), (0, width - d)).reshape(b * h * n, width).contiguous()
                           for t in (o, do))
        delta = torch.empty(b * h * n, dtype=torch.float32, device=o.device)
        block_m = 64
        kernel[(triton.cdiv(n, block_m), b * h)](o_rows, do_rows, delta, n, HEAD_DIM=width, BLOCK_M=block_m)
        return delta.reshape(b, h, n)

    return backward_delta


@dataclass(frozen=True)
class _Replacement:
    module: str
    name: str  # the library function replaced (the host wrapper, for a kernel)
    build: Callable[[Any | None], Callable]  # answer (None: the stand-in) → a function with the library's signature
    stand_in: str  # what the stand-in computes, for the learner


_REPLACEMENTS = {
    "ch02-tiled-forward": _Replacement("flashtrade_lib.attention.reference", "tiled_attention", _forward_from,
                                       "naive attention (the dense formula, the whole N × N score matrix)"),
    "ch03-tiled-backward": _Replacement("flashtrade_lib.attention.reference", "tiled_attention_backward",
                                        _backward_from, "the dense backward (through the whole N × N matrix P)"),
    "ch04-kernel-inner-loop": _Replacement("flashtrade_lib.kernels.flash_attention", "flash_attention_forward",
                                           _kernel_forward_from,
                                           "a dense PyTorch forward (not a Triton kernel, not tiled)"),
    "ch04-bwd-preprocess": _Replacement("flashtrade_lib.kernels.flash_attention", "backward_delta",
                                        _backward_delta_from, "a PyTorch row sum (not a Triton kernel)"),
}


def _install(exercise_id: str, answer: Any | None) -> Callable:
    spec = _REPLACEMENTS[exercise_id]
    fn = spec.build(answer)
    setattr(importlib.import_module(spec.module), spec.name, fn)
    return fn


def stand_in(exercise_id: str) -> Callable:
    """Install (and return) the announced stand-in for what ``exercise_id`` withholds."""
    spec = _REPLACEMENTS[exercise_id]
    print(f"Student edition: the library's {spec.name} is the answer of exercise {exercise_id}, so it is "
          f"withheld. The cells below that use {spec.name} run {spec.stand_in} in its place: their numbers are "
          "right, but they show that method's cost, not the tiled one's (after the exercise, in its own "
          "chapter, your answer takes over once it passes).")
    return _install(exercise_id, None)


def adopt(exercise_id: str, answer: Any | None) -> Callable:
    """Install (and return) the learner's ``answer`` in place of the withheld function once it passes its check."""
    spec = _REPLACEMENTS[exercise_id]
    if os.environ.get("NBGRADER_EXECUTION"):  # graded by its own cell already: do not run it twice
        print(f"Autograding: the cells below use {spec.stand_in} in place of {spec.name}.")
        return _install(exercise_id, None)
    if answer is None:
        print(f"✘ Your answer to {exercise_id} is not defined: the cells below keep using {spec.stand_in}.")
        return _install(exercise_id, None)
    feedback = check(exercise_id, answer)
    if not feedback.passed:
        print(f"✘ Your answer to {exercise_id} does not pass its check yet, so the cells below keep using "
              f"{spec.stand_in} in place of {spec.name}. Once it passes, re-run this cell and the ones after it.")
        return _install(exercise_id, None)
    print(f"✔ Your answer to {exercise_id} passes: the cells below use it in place of the library's {spec.name}.")
    return _install(exercise_id, answer)
