"""Exercise checks for chapter 3 (03_backward_recomputation): dS through D, what the backward
stores, and the whole tiled backward with recomputation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.exercises.attention_cases import AttentionCase, grade_tiled

# ---------------------------------------------------------------------- dS via D


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


@register(
    "ch03-stored-elements",
    title="Elements kept for the backward: P versus L",
)
def _grade_stored(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function stored_elements(n, heads) -> (p_elements, lse_elements).")
    for n, heads in [(1, 1), (1024, 8), (8192, 12), (100, 3)]:
        expected = (heads * n * n, heads * n)  # P: one number per (query, key); L: one per query
        got = tuple(int(x) for x in answer(n, heads))
        if got != expected:
            hint = " Each head has its own P and its own L." if got == (n * n, n) else ""
            return Feedback(False, f"stored_elements({n}, {heads}) returned {got}, expected {expected}.{hint}")
    return Feedback(True, "storing L instead of P saves a factor N: 8192× at N = 8192.")


# -------------------------------------------------------------- the tiled backward


def _dense_gradients(case: AttentionCase, do: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dq, dk, dv) through the full softmax Jacobian, from the dense P (small cases only)."""
    _, _, p = case.expected()
    dv = np.swapaxes(p, -1, -2) @ do
    dp = do @ np.swapaxes(case.v, -1, -2)
    ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True)) * case.scale
    return ds @ case.k, np.swapaxes(ds, -1, -2) @ case.q, dv


def _forward(case: AttentionCase) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(o, lse, do)``: the forward from the dense formula (the tiled one is an exercise, withheld from students)."""
    o, lse, _ = case.expected()
    do = np.random.default_rng(3).standard_normal(o.shape)
    return o, lse, do


@register(
    "ch03-tiled-backward",
    title="The tiled backward with recomputation: my_tiled_backward(q, k, v, o, lse, do, ...)",
    references=("flashtrade_lib.attention.reference:tiled_attention_backward",),
    hints=(
        "Before any tile: D = rowsum(dO ∘ O), one number per query row. Then loop over key tiles "
        "outside and query tiles inside, and keep dk, dv of the key tile while the inner loop runs.",
        "In a tile, rebuild P = exp(S - lse) from the recomputed, masked scores S = scale·Q Kᵀ — "
        "already normalised. Then dV += Pᵀ dO, dP = dO Vᵀ, and dS = P ∘ (dP - D).",
        "dQ and dK carry the scale of S: dQ += scale · dS K, dK += scale · dSᵀ Q. A fully masked row "
        "has lse = -inf: shift it by 0 so its P is 0, not NaN.",
    ),
)
def _grade_tiled_backward(answer: object) -> Feedback:
    def prepare(case: AttentionCase) -> tuple[tuple, tuple[np.ndarray, ...]]:
        o, lse, do = _forward(case)
        return (case.q, case.k, case.v, o, lse, do, case.block_q, case.block_k), _dense_gradients(case, do)

    def diagnose(bad: list[str], got: Sequence[np.ndarray], case: AttentionCase) -> str:
        if "dv" not in bad:
            return (" dV is right, so your P is right: the error is in dS — the softmax Jacobian needs "
                    "dP − D, with D = rowsum(dO ∘ O), before multiplying by P.")
        return " dV = Pᵀ dO is wrong, so P is: P = exp(S − lse), with the forward's scale and masks."

    return grade_tiled(
        answer, signature="my_tiled_backward(q, k, v, o, lse, do, block_q, block_k, causal=False, mask=None) "
                          "-> (dq, dk, dv)",
        outputs=("dq", "dk", "dv"), prepare=prepare, diagnose=diagnose,
        passed="gradients match the dense Jacobian on all {cases} cases, recomputed a tile at a time from "
               "lse: O(N) memory instead of O(N²).",
    )
