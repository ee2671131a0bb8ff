"""Exercise checks for chapter 3 (03_backward_recomputation): dS through D, the backward's FLOPs and
traffic, and the whole tiled backward with recomputation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.exercises.attention_cases import AttentionCase, grade_tiled, naming_the_case

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


# ------------------------------------------------------- the backward's FLOPs and traffic

# (n, d, block_q, block_k, causal): blocks that divide N and blocks that do not, square and not, causal and not
_COST_CASES = [(1024, 64, 128, 128, False), (1000, 32, 64, 128, False), (1000, 32, 64, 128, True),
               (512, 64, 128, 64, True), (300, 16, 32, 48, True)]


def _cost_variant(n: int, d: int, bq: int, bk: int, causal: bool, *, products: int = 5, skip: bool = True,
                  dq_per_key_tile: bool = True, preprocess: bool = True) -> tuple[int, int, int]:
    """``(flops, reads, writes)`` with one of the typical slips, to name the cause of a wrong count."""
    from flashtrade_lib.attention.reference import causal_block_skipped

    pairs = rows = 0
    for k0 in range(0, n, bk):
        for q0 in range(0, n, bq):
            q1 = min(q0 + bq, n)
            if skip and causal and causal_block_skipped(q1, k0):
                continue
            pairs += (q1 - q0) * (min(k0 + bk, n) - k0)
            rows += q1 - q0
    dq_rows = rows if dq_per_key_tile else n
    reads = (2 * n * d if preprocess else 0) + 2 * n * d + rows * (2 * d + 2) + dq_rows * d
    writes = (n if preprocess else 0) + 2 * n * d + dq_rows * d
    return 2 * products * pairs * d, reads, writes


def _cost_diagnosis(case: tuple[int, int, int, int, bool], got: tuple[int, int, int], bad: str) -> str:
    n, d, bq, bk, causal = case
    if bad == "flops":
        if got[0] == _cost_variant(*case, products=4)[0]:
            return (" That is 4 products per tile — the backward that keeps P. Recomputing S = τ Q Kᵀ in every "
                    "tile is a fifth.")
        if causal and got[0] in (_cost_variant(*case, skip=False)[0], _cost_variant(*case, skip=False, products=4)[0]):
            return (" That counts every tile: under causal, a key tile that starts at or after the query tile's "
                    "end is skipped, products and all.")
        if got[0] == _cost_variant(*case)[0] // 2:
            return " Count a multiply–add as 2 FLOPs: an (r×d)·(d×c) product is 2rcd."
        if causal and got[0] == _cost_variant(*case, skip=False)[0] // 2:
            return (" Half of N² is the masked count, not the computed one: a tile that touches the diagonal is "
                    "computed whole (masked inside it). Sum over the tiles the loops visit.")
        return ""
    if causal and got[1:] == _cost_variant(*case, skip=False)[1:]:
        return " That streams the query side past every key tile: under causal the skipped tiles load nothing."
    if got[1:] == _cost_variant(*case, dq_per_key_tile=False)[1:]:
        return (" That reads and writes dQ once; every key tile adds into dQ_i, so it is read, updated and "
                "written back once per visited tile.")
    if got[1:] == _cost_variant(*case, preprocess=False)[1:]:
        return " That leaves out the preprocess D = rowsum(dO ∘ O): it reads dO and O and writes D, before any tile."
    want = _cost_variant(*case)
    streamed = (want[2] - n - 2 * n * d) // d  # query rows streamed past key tiles, summed over key tiles
    short = {"reads": want[1] - got[1], "writes": want[2] - got[2]}
    causes = {("reads", 2 * streamed): "L_i and D_i, one number per row each, are read with every visited query tile",
              ("reads", streamed * d): "dQ_i is read before each update",
              ("writes", streamed * d): "dQ_i is written back after each update"}
    for (which, amount), cause in causes.items():
        if short[which] == amount:
            return f" The {which} are short by {amount:,}: {cause}."
    return ""


@register(
    "ch03-backward-cost",
    title="Count the tiled backward's FLOPs and slow-memory traffic",
    references=("flashtrade_lib.attention.iomodel:tiled_backward_io",
                "flashtrade_lib.attention.iomodel:tiled_backward_flops",
                "flashtrade_lib.attention.iomodel:simulate_tiled_backward"),
    hints=(
        "Loop like the algorithm: key tiles outside, query tiles inside, skipping a pair when causal and "
        "k0 >= q1. Count, per visited pair, its rows r (query tile) and c (key tile).",
        "FLOPs per visited pair: five products of r×c×d multiply–adds each (S, dV, dP, dQ, dK), 2 FLOPs per "
        "multiply–add. Nothing else (exp, scaling, masks) is counted.",
        "Traffic: D's preprocess (read dO, O; write D); per key tile, K_j, V_j read and dK_j, dV_j written "
        "once; per visited pair, Q_i, dO_i, L_i, D_i and dQ_i read and dQ_i written back.",
    ),
)
def _grade_backward_cost(answer: object) -> Feedback:
    from flashtrade_lib.attention.iomodel import tiled_backward_flops, tiled_backward_io

    if not callable(answer):
        return Feedback(False, "expected a function backward_cost(n, d, block_q, block_k, causal=False) "
                               "-> (flops, reads, writes).")
    for case in _COST_CASES:
        n, d, bq, bk, causal = case
        where = f"backward_cost(n={n}, d={d}, block_q={bq}, block_k={bk}, causal={causal})"
        with naming_the_case(where):
            got = answer(n, d, bq, bk, causal=causal)
        try:
            flops, reads, writes = (int(x) for x in got)
        except (TypeError, ValueError):
            return Feedback(False, f"{where} returned {got!r}: expected three integers (flops, reads, writes).")
        io = tiled_backward_io(n, d, block_q=bq, block_k=bk, causal=causal)
        want = (tiled_backward_flops(n, d, block_q=bq, block_k=bk, causal=causal), io.reads, io.writes)
        if flops != want[0]:
            return Feedback(False, f"{where}: {flops:,} FLOPs, expected {want[0]:,}."
                                   f"{_cost_diagnosis(case, (flops, reads, writes), 'flops')}")
        if (reads, writes) != want[1:]:
            return Feedback(False, f"{where}: the FLOPs are right, but the traffic is {reads:,} reads + {writes:,} "
                                   f"writes, expected {want[1]:,} + {want[2]:,} elements."
                                   f"{_cost_diagnosis(case, (flops, reads, writes), 'io')}")
    n, d = 4096, 64
    flops = tiled_backward_flops(n, d, block_q=64, block_k=128)
    traffic = tiled_backward_io(n, d, block_q=64, block_k=128).total
    return Feedback(True, f"e.g. N = {n}, d = {d}, blocks 64 × 128: {flops / 2**30:.1f} GFLOP for "
                          f"{traffic * 4 / 2**20:.0f} MiB of float32 traffic, {flops / (4 * traffic):.0f} FLOPs per "
                          "byte — the backward does 2.5× the forward's products to store O(N) instead of P.")


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
