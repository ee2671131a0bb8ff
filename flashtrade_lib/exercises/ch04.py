"""Exercise checks for chapter 4 (04_gpu_kernels): counting work and counting programs."""

from __future__ import annotations

import math

from flashtrade_lib.exercises import Feedback, register

_SHAPES = [(1, 1, 1024, 64), (4, 16, 2048, 128), (2, 8, 1000, 64), (1, 32, 16384, 128), (3, 5, 77, 24)]


def _matmul_flops(m: int, k: int, n: int) -> float:
    """An (m×k) @ (k×n) product: m·n dot products of length k, each k multiplies and k adds."""
    return 2.0 * m * k * n


def _expected_fwd_flops(b: int, h: int, n: int, d: int, causal: bool) -> float:
    per_head = _matmul_flops(n, d, n) + _matmul_flops(n, n, d)  # S = Q Kᵀ, then O = P V
    return b * h * per_head / (2 if causal else 1)  # causal: about half of S is never computed


@register(
    "ch04-flops",
    title="FLOPs of the attention forward pass",
    solution=lambda: lambda b, h, n, d, causal: 4.0 * b * h * n * n * d / (2 if causal else 1),
    wrong=lambda: lambda b, h, n, d, causal: 4.0 * b * h * n * n * d,
)
def _grade_flops(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function fwd_flops(batch, heads, n, d, causal) -> float.")
    for b, h, n, d in _SHAPES:
        for causal in (False, True):
            want = _expected_fwd_flops(b, h, n, d, causal)
            got = answer(b, h, n, d, causal)
            if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-9):
                hint = ""
                if causal and isinstance(got, (int, float)) and math.isclose(got, 2 * want, rel_tol=1e-9):
                    hint = " With causal=True only the lower triangle of S is needed: halve the count."
                elif isinstance(got, (int, float)) and math.isclose(got, want / 2, rel_tol=1e-9):
                    hint = " Count a multiply-add as 2 FLOPs, and there are two matmuls (Q Kᵀ and P V)."
                return Feedback(
                    False,
                    f"for batch={b}, heads={h}, N={n}, d={d}, causal={causal} you gave {got!r}, "
                    f"expected {want:.6g}.{hint}",
                )
    return Feedback(True, "4·B·H·N²·d, halved when causal — the count every FlashAttention paper uses.")


def _expected_grid(batch: int, heads: int, n: int, block_m: int) -> tuple[int, int]:
    return (-(-n // block_m), batch * heads)


@register(
    "ch04-grid",
    title="How many programs does the forward kernel launch?",
    solution=lambda: lambda batch, heads, n, block_m: ((n + block_m - 1) // block_m, batch * heads),
    wrong=lambda: lambda batch, heads, n, block_m: (n // block_m, batch * heads),
)
def _grade_grid(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function grid(batch, heads, n, block_m) -> (tiles, batch*heads).")
    for batch, heads, n, block_m in [(2, 8, 1024, 128), (1, 4, 1000, 128), (3, 2, 1, 64), (4, 16, 4097, 64)]:
        want = _expected_grid(batch, heads, n, block_m)
        got = answer(batch, heads, n, block_m)
        if tuple(got) != want:
            hint = ""
            if tuple(got)[0] == n // block_m and n % block_m:
                hint = (" The last, partial tile of queries needs a program too (rounding down drops "
                        f"{n % block_m} queries): use ceil division, triton.cdiv(n, block_m).")
            elif tuple(got)[1] != batch * heads:
                hint = " Every (batch, head) pair gets its own column of programs: the second axis is batch·heads."
            return Feedback(False, f"for batch={batch}, heads={heads}, N={n}, BLOCK_M={block_m} you gave "
                                   f"{tuple(got)}, expected {want}.{hint}")
    return Feedback(True, "one program per query tile (rounded up) per (batch, head) — exactly _attn_fwd's grid.")
