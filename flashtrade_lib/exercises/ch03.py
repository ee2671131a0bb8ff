"""Exercise checks for chapter 3 (03_backward_recomputation): dS through D, and what the backward stores."""

from __future__ import annotations

import numpy as np

from flashtrade_lib.exercises import Feedback, register

# ---------------------------------------------------------------------- dS via D


def _ds_solution(p: np.ndarray, dp: np.ndarray, o: np.ndarray, do: np.ndarray) -> np.ndarray:
    delta = (do * o).sum(axis=-1, keepdims=True)  # D = rowsum(dO ∘ O) = rowsum(P ∘ dP)
    return p * (dp - delta)


def _ds_wrong(p: np.ndarray, dp: np.ndarray, o: np.ndarray, do: np.ndarray) -> np.ndarray:
    return p * dp  # treats softmax as elementwise: forgets its Jacobian's second term


def _ds_case(seed: int, nq: int, nk: int, d: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((nq, nk)) * 2
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    v = rng.standard_normal((nk, d))
    do = rng.standard_normal((nq, d))
    return p, do @ v.T, p @ v, do


@register(
    "ch03-ds-via-d",
    title="dS from P, dP and D = rowsum(dO ∘ O)",
    solution=lambda: _ds_solution,
    wrong=lambda: _ds_wrong,
)
def _grade_ds(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function ds_from(p, dp, o, do) -> dS of shape (Nq, Nk).")
    for seed, nq, nk, d in [(0, 4, 5, 3), (1, 1, 1, 2), (2, 16, 9, 8)]:
        p, dp, o, do = _ds_case(seed, nq, nk, d)
        # The full softmax Jacobian, row by row: dS_i = (diag(P_i) − P_i P_iᵀ) dP_i.
        expected = np.stack([(np.diag(pi) - np.outer(pi, pi)) @ gi for pi, gi in zip(p, dp, strict=True)])
        got = np.asarray(answer(p, dp, o, do))
        if got.shape != expected.shape:
            return Feedback(False, f"dS must have the shape of P, {expected.shape}; got {got.shape}.")
        if not np.allclose(got, expected, rtol=1e-10, atol=1e-12):
            hint = ""
            if np.allclose(got, p * dp):
                hint = " P ∘ dP is only the diagonal of the softmax Jacobian; subtract D = rowsum(dO ∘ O) from dP first."
            elif np.allclose(got, p * (dp - (do * o).sum())):
                hint = " D is one number per query row: sum over the last axis only (keepdims=True)."
            return Feedback(False, f"max error {np.abs(got - expected).max():.2e} for P of shape {p.shape}.{hint}")
    return Feedback(True, "one subtraction per row replaces an Nk×Nk Jacobian per query — and needs only O and dO.")


# ------------------------------------------------------------- what is stored


def _stored_solution(n: int, heads: int) -> tuple[int, int]:
    return heads * n * n, heads * n  # P: one number per (query, key); L: one per query


def _stored_wrong(n: int, heads: int) -> tuple[int, int]:
    return n * n, n


@register(
    "ch03-stored-elements",
    title="Elements kept for the backward: P versus L",
    solution=lambda: _stored_solution,
    wrong=lambda: _stored_wrong,
)
def _grade_stored(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function stored_elements(n, heads) -> (p_elements, lse_elements).")
    for n, heads in [(1, 1), (1024, 8), (8192, 12), (100, 3)]:
        expected = _stored_solution(n, heads)
        got = tuple(int(x) for x in answer(n, heads))
        if got != expected:
            hint = " Each head has its own P and its own L." if got == (n * n, n) else ""
            return Feedback(False, f"stored_elements({n}, {heads}) returned {got}, expected {expected}.{hint}")
    ratio = _stored_solution(8192, 8)[0] // _stored_solution(8192, 8)[1]
    return Feedback(True, f"storing L instead of P saves a factor N: {ratio}× at N = 8192.")
