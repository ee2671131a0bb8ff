"""Exercise checks for chapter 1 (01_attention_bottleneck): predict, then measure, the peak memory of a
naive attention that reuses its score buffer."""

from __future__ import annotations

import math

import numpy as np

from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.exercises.attention_cases import error_text, max_error, naming_the_case

# ------------------------------------------------------------ the memory model


def inplace_peak_range(n: int, d: int, itemsize: int = 4) -> tuple[int, int]:
    """Bytes alive at the peak of an in-place naive attention, one head, ``N_q = N_k = n``, ``d_v = d``.

    Its arrays: the ``N × N`` score buffer, reused for ``exp`` and the probabilities; the ``N × d`` output,
    written by ``o = p @ v`` while the buffer is alive; and row vectors of length ``N`` (the row max, the
    row sum), of which an implementation holds none, one or two beside the buffer at its peak. So the
    peak lies between ``N² + N·d`` and ``N² + N·d + 2N`` elements.
    """
    low = n * n + n * d
    return low * itemsize, (low + 2 * n) * itemsize


_PEAK_CASES = [(1024, 64, 4), (8192, 64, 4), (4096, 128, 2), (100, 200, 4), (3, 5, 8)]


def _peak_diagnosis(n: int, d: int, itemsize: int, got: float) -> str:
    low, high = inplace_peak_range(n, d, itemsize)
    square = n * n * itemsize
    if low <= got * itemsize <= high and itemsize > 1:
        return " That is a count of elements: multiply by itemsize, the bytes per element."
    for copies, what in ((3, "s, s − m and exp(s − m): naive_attention's three"), (2, "a score buffer and a temporary")):
        if copies * square <= got <= copies * square + high - square:
            return (f" That is {copies} N×N arrays ({what}). In place, every step after q @ kᵀ writes into "
                    "the one score buffer: s *= τ, s -= max, np.exp(s, out=s), s /= sum.")
    if square <= got < low:
        return (" That leaves out the output: o = s @ v allocates the N×d result while the N×N buffer is "
                "still alive, and peak_memory counts it.")
    return ""


@register(
    "ch01-inplace-peak",
    title="Predict the peak extra memory of an in-place naive attention",
    hints=(
        "List the arrays the function creates, in order, and ask which are alive at the same moment. "
        "The inputs q, k, v were there before the call: they do not count.",
        "In place, q @ kᵀ is the only N×N allocation: the scale, the max shift, exp and the division "
        "all write into it. What else is alive while the last product runs?",
        "The answer is bytes: elements × itemsize. Row statistics are vectors of length N — small, but "
        "counted; the check accepts zero, one or two of them.",
    ),
)
def _grade_inplace_peak(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function inplace_peak_bytes(n, d, itemsize=4) -> bytes.")
    for n, d, itemsize in _PEAK_CASES:
        where = f"inplace_peak_bytes({n}, {d}, itemsize={itemsize})"
        with naming_the_case(where):
            got = answer(n, d, itemsize=itemsize)
        if not isinstance(got, (int, float, np.integer, np.floating)) or not math.isfinite(got):
            return Feedback(False, f"{where} returned {got!r}: expected a number of bytes.")
        low, high = inplace_peak_range(n, d, itemsize)
        if not low <= got <= high:
            return Feedback(False, f"{where} = {got:,.0f} bytes; the in-place algorithm holds between "
                                   f"{low:,} and {high:,} bytes at its peak.{_peak_diagnosis(n, d, itemsize, got)}")
    low, _ = inplace_peak_range(8192, 64)
    return Feedback(True, f"one N×N buffer instead of three: {low / 2**20:,.0f} MiB at N = 8192 in float32, not "
                          f"{3 * 4 * 8192**2 / 2**20:,.0f} MiB — still N², so it only delays the wall by √3 in N. "
                          "Now write it and measure it.")


# ------------------------------------------------------------ the function, measured

MEASURE_N, MEASURE_D = 2048, 64
IN_PLACE_LIMIT = 1.5  # score matrices: one buffer passes, a second N×N temporary does not


def _correctness_cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(1)

    def qkv(nq: int, nk: int, d: int, dtype: type, spread: float = 1.0) -> tuple[np.ndarray, ...]:
        return tuple((rng.standard_normal(shape) * spread).astype(dtype) for shape in ((nq, d), (nk, d), (nk, d)))

    return [
        ("float64, N_q = N_k = 7, d = 4", *qkv(7, 7, 4, np.float64), 1e-10),
        ("float64, N_q = 33, N_k = 50, d = 8", *qkv(33, 50, 8, np.float64), 1e-10),
        ("float32, N = 64, d = 16", *qkv(64, 64, 16, np.float32), 1e-5),
        ("float64, scores up to about ±1000 (exp overflows without the max shift)",
         *qkv(16, 24, 8, np.float64, spread=20.0), 1e-10),
    ]


def _output_diagnosis(got: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> str:
    from flashtrade_lib.attention.reference import naive_attention

    if not np.isfinite(got).all():
        return (" It holds inf or NaN: exp of a large score overflows — subtract each row's maximum before "
                "np.exp (softmax does not change).")
    with np.errstate(all="ignore"):
        if max_error(got, naive_attention(q, k, v, scale=1.0)) < 1e-8:
            return " It equals attention without the scale: multiply the scores by τ = 1/√d first."
        s = q @ k.T / math.sqrt(q.shape[1])
        if max_error(got, np.exp(s - s.max(axis=1, keepdims=True)) @ v) < 1e-8:
            return " The rows are not normalised: divide each row of exp(s − max) by its sum before @ v."
    return ""


@register(
    "ch01-inplace-attention",
    title="Write the in-place naive attention and measure its peak",
    references=("flashtrade_lib.attention.reference:naive_attention",
                "flashtrade_lib.attention.reference:tiled_attention"),
    hints=(
        "Only q @ k.T may allocate an N×N array; every later step (scale, max shift, exp, division by the "
        "row sums) must write into it. The row max and row sum are (N, 1) vectors: keepdims=True.",
        "Watch for hidden temporaries: `s = s * scale`, `s - m` and `np.exp(s)` each allocate a new N×N "
        "array; the augmented operators (*=, -=, /=) and a ufunc's out= argument do not.",
        "Keep float32 scores float32: `s * np.float64(...)` makes a new float64 array, twice as large; "
        "an augmented `s *= scale` keeps s's dtype and its memory.",
    ),
)
def _grade_inplace_attention(answer: object) -> Feedback:
    from flashtrade_lib.attention.reference import naive_attention
    from flashtrade_lib.measure.bench import fmt_bytes, peak_memory

    if not callable(answer):
        return Feedback(False, "expected a function inplace_attention(q, k, v) -> o.")
    for name, q, k, v, tol in _correctness_cases():
        originals = (q.copy(), k.copy(), v.copy())
        with np.errstate(all="ignore"), naming_the_case(name):
            got = np.asarray(answer(q, k, v))
        want = naive_attention(*originals)
        if any(not np.array_equal(a, b) for a, b in zip((q, k, v), originals, strict=True)):
            return Feedback(False, f"{name}: your function changed its inputs q, k or v. In place means in the "
                                   "score buffer your function allocates, never in the caller's arrays.")
        if got.shape != want.shape:
            return Feedback(False, f"{name}: o must have shape {want.shape} (N_q, d_v), got {got.shape}.")
        err = max_error(got.astype(np.float64), want.astype(np.float64))
        if err > tol:
            return Feedback(False, f"{name}: o differs from naive_attention by {error_text(err)} (tolerance "
                                   f"{tol:g}).{_output_diagnosis(got.astype(np.float64), *originals)}")
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((MEASURE_N, MEASURE_D)).astype(np.float32) for _ in range(3))
    where = f"measured at N = {MEASURE_N}, d = {MEASURE_D}, float32"
    with naming_the_case(where):
        peak = min(peak_memory(lambda: answer(q, k, v)) for _ in range(2))  # the smaller of two: allocator noise
    square = 4 * MEASURE_N**2
    low, _ = inplace_peak_range(MEASURE_N, MEASURE_D)
    model = f"the model predicts {fmt_bytes(low)} (N² + N·d elements, plus up to 2N)"
    if peak > IN_PLACE_LIMIT * square:
        return Feedback(False, f"{where}: the peak was {fmt_bytes(peak)}, {peak / square:.1f} N×N float32 matrices "
                               f"of {fmt_bytes(square)}: something allocates a second N×N array — `s - m`, `np.exp(s)`, "
                               "`s = s * scale` or float64 scores. Use the augmented operators and out=.")
    if peak < 0.5 * square:
        return Feedback(False, f"{where}: the peak was only {fmt_bytes(peak)}, less than one N×N matrix "
                               f"({fmt_bytes(square)}): this exercise asks for naive attention with one full score "
                               "buffer, not a tiled one.")
    return Feedback(True, f"{where}: the peak was {fmt_bytes(peak)} ({peak / square:.2f} N×N matrices), {model}; "
                          "naive_attention's three arrays need about 3.")
