"""How many elements move between slow memory (HBM) and fast memory (SRAM)?

FlashAttention's argument is about memory *traffic*, not arithmetic: standard
attention writes the ``N × N`` scores and probabilities to slow memory and reads
them back, ``Θ(Nd + N²)`` element accesses, while the tiled algorithm streams K/V
tiles past on-chip Q tiles and needs ``Θ(N²d²/M)`` for an on-chip memory of ``M``
elements (Dao et al. 2022, Theorem 2). This module gives

* exact counts for both algorithms, as the book implements them
  (:func:`standard_attention_io`, :func:`tiled_attention_io`), the block sizes a
  fast-memory budget of ``M`` elements allows (:func:`blocks_for_memory`), the exact
  traffic as a function of ``M`` (:func:`tiled_io_for_memory`) and a closed-form upper
  bound on it (:func:`tiled_io_upper_bound`);
* the same for the tiled backward (:func:`tiled_backward_io`,
  :func:`backward_blocks_for_memory`, :func:`simulate_tiled_backward`);
* the paper's lower bound beside that upper bound (:func:`io_lower_bound`,
  Proposition 3: no exact algorithm does asymptotically better for all ``d ≤ M ≤ Nd``);
* *instrumented runs* (:func:`simulate_standard`, :func:`simulate_tiled`) that
  really compute attention while every slow-memory array is wrapped in a
  :class:`SlowMemory` that counts each element loaded or stored — the tests check
  that the runs agree with the formulas and that their outputs are correct.

Counts are elements per head (multiply by bytes per element for bytes), and
follow the paper's accounting: an algorithm's own matmul reads each operand
once; masks are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flashtrade_lib.attention.reference import causal_block_skipped, tile_schedule

__all__ = [
    "IOCount",
    "standard_attention_io",
    "tiled_attention_io",
    "blocks_for_memory",
    "fast_memory_needed",
    "tiled_io_for_memory",
    "tiled_io_upper_bound",
    "tiled_backward_io",
    "tiled_backward_flops",
    "backward_blocks_for_memory",
    "backward_fast_memory_needed",
    "simulate_tiled_backward",
    "io_lower_bound",
    "attention_flops",
    "SlowMemory",
    "simulate_standard",
    "simulate_tiled",
]


@dataclass(frozen=True)
class IOCount:
    """Elements read from and written to slow memory."""

    reads: int
    writes: int

    @property
    def total(self) -> int:
        return self.reads + self.writes

    def __add__(self, other: IOCount) -> IOCount:
        return IOCount(self.reads + other.reads, self.writes + other.writes)


def check_positive_int(value: object, name: str) -> int:
    """``value`` as an int if it is a positive integer (bools refused), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def standard_attention_io(n: int, d: int, *, n_k: int | None = None, d_v: int | None = None) -> IOCount:
    """Slow-memory traffic of standard attention (the paper's Algorithm 0), per head.

    1. read Q, K; write ``S = QKᵀ``       (``Nq·d + Nk·d`` reads, ``Nq·Nk`` writes)
    2. read S; write ``P = softmax(S)``   (``Nq·Nk`` reads, ``Nq·Nk`` writes)
    3. read P, V; write ``O = PV``        (``Nq·Nk + Nk·dv`` reads, ``Nq·dv`` writes)

    ``n`` is the number of queries; ``n_k`` (default ``n``) keys; ``d_v`` (default ``d``).
    """
    nq, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    nk = nq if n_k is None else check_positive_int(n_k, "n_k")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    reads = nq * d + nk * d + nq * nk + nq * nk + nk * dv
    writes = nq * nk + nq * nk + nq * dv
    return IOCount(reads, writes)


def tiled_attention_io(
    n: int,
    d: int,
    *,
    block_q: int,
    block_k: int,
    n_k: int | None = None,
    d_v: int | None = None,
    causal: bool = False,
    store_lse: bool = True,
) -> IOCount:
    """Slow-memory traffic of :func:`~flashtrade_lib.attention.reference.tiled_attention`, per head.

    Each Q tile is read once and each output row written once; for every Q tile,
    every K/V tile it visits is read, so K and V are read ``⌈Nq/block_q⌉`` times
    (fewer under ``causal``, where tiles above the diagonal are skipped). The row
    log-sum-exp ``L`` (one number per query, saved for the backward) is written
    when ``store_lse``.
    """
    nq, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    nk = nq if n_k is None else check_positive_int(n_k, "n_k")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    bq, bk = check_positive_int(block_q, "block_q"), check_positive_int(block_k, "block_k")
    kv_rows = 0
    for q0 in range(0, nq, bq):
        q1 = min(q0 + bq, nq)
        if causal:  # key tiles k0 = 0, bk, 2bk, ... are visited while k0 < q1
            visited_tiles = sum(1 for k0 in range(0, nk, bk) if not causal_block_skipped(q1, k0))
            kv_rows += min(visited_tiles * bk, nk)
        else:
            kv_rows += nk
    reads = nq * d + kv_rows * (d + dv)
    writes = nq * dv + (nq if store_lse else 0)
    return IOCount(reads, writes)


def blocks_for_memory(m: int, d: int, d_v: int | None = None) -> tuple[int, int]:
    """The largest ``(block_q, block_k)`` whose tile step fits in ``m`` on-chip elements.

    The paper's Algorithm 1 sets the *key* block ``B_c = ⌈M/4d⌉`` (large) and the *query*
    block ``B_r = min(⌈M/4d⌉, d)`` (small), because its loop order is FlashAttention-1's:
    K/V tiles outside, Q tiles streamed inside, so the outer (key) block decides how
    often the inner operand is re-read. Our loop order is FlashAttention-2's — Q outside
    — so the roles swap: the small block is ``block_k = min(⌊M/4d⌋, d)`` and ``block_q``
    takes the rest of ``M``. A tile step holds the K and V tiles (``block_k·(d + d_v)``)
    and, per query row, its Q row, score row, output row and ``m``, ``ℓ``
    (``d + block_k + d_v + 2``; :func:`fast_memory_needed`), so
    ``block_q = ⌊(M − block_k·(d + d_v)) / (d + block_k + d_v + 2)⌋``. K and V are then
    read ``⌈N/block_q⌉`` times: about ``N(3d + 2)/(M − 2d²)`` once ``M ≥ 4d²`` — the
    ``Θ(N²d²/M)`` of Theorem 2, whose constant tends to 6 only when ``M ≫ 2d²`` and
    ``N ≫ block_q`` (:func:`tiled_io_upper_bound`).
    """
    m, d = check_positive_int(m, "m"), check_positive_int(d, "d")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    block_k = max(1, min(d, m // (4 * d)))
    block_q = (m - block_k * (d + dv)) // (d + block_k + dv + 2)
    if block_q < 1:
        raise ValueError(
            f"on-chip memory m={m} elements cannot hold even one query row with d={d}, "
            f"d_v={dv}; it needs at least {fast_memory_needed(1, 1, d, dv)}"
        )
    return int(block_q), int(block_k)


def fast_memory_needed(block_q: int, block_k: int, d: int, d_v: int | None = None) -> int:
    """Elements held on chip during one tile step of the tiled forward.

    Q tile, K tile, V tile, the scores/probabilities tile, the output accumulator
    and the two running statistics ``m`` and ``ℓ``.
    """
    bq, bk, d = check_positive_int(block_q, "block_q"), check_positive_int(block_k, "block_k"), check_positive_int(d, "d")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    return bq * d + bk * d + bk * dv + bq * bk + bq * dv + 2 * bq


def tiled_io_for_memory(n: int, d: int, m: int, *, d_v: int | None = None) -> IOCount:
    """Exact traffic of the tiled forward when its blocks fill a fast memory of ``m`` elements.

    :func:`tiled_attention_io` at :func:`blocks_for_memory`'s blocks: a step function of
    ``m`` (``⌈N/block_q⌉`` jumps), the curve chapter 2 plots through the instrumented counts.
    """
    block_q, block_k = blocks_for_memory(m, d, d_v)
    return tiled_attention_io(n, d, block_q=block_q, block_k=block_k, d_v=d_v)


def tiled_io_upper_bound(n: int, d: int, m: int, *, d_v: int | None = None) -> float:
    """A closed-form upper bound on :func:`tiled_io_for_memory`: the formula with its floors and ceilings removed.

    With ``c = block_k`` and ``w = d + c + d_v + 2`` (fast memory per query row),
    ``block_q ≥ (M − c(d + d_v) − w + 1)/w`` and ``⌈N/block_q⌉ < N/block_q + 1``, so the
    traffic ``N·d + N·d_v + N + ⌈N/block_q⌉·N(d + d_v)`` is below
    ``N(d + d_v + 1) + N(d + d_v)·(N·w/(M − c(d + d_v) − w + 1) + 1)``. For ``M ≫ d²`` that is
    ``≈ 2N²d(3d + 2)/M ≈ 6N²d²/M``: the order ``N²d²/M`` times a constant.
    """
    n, d, m = check_positive_int(n, "n"), check_positive_int(d, "d"), check_positive_int(m, "m")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    _, c = blocks_for_memory(m, d, dv)  # raises when not even one query row fits
    w = d + c + dv + 2
    return n * (d + dv + 1) + n * (d + dv) * (n * w / (m - c * (d + dv) - w + 1) + 1)


def io_lower_bound(n: int, d: int, m: int) -> float:
    """``N²d²/M``: the order below which no exact attention algorithm's traffic can go (Proposition 3).

    Dao et al. (2022), Proposition 3: for ``d ≤ M ≤ Nd`` there is no algorithm computing
    exact attention with ``o(N²d²/M)`` slow-memory accesses for all such ``M``. (At
    ``M = Nd`` it is ``Nd``: the inputs must be read and the output written.) The bound is
    asymptotic, so this returns the order with constant 1; the upper bound of
    :func:`tiled_attention_io` with :func:`blocks_for_memory` is a small constant times it,
    which is what "FlashAttention is IO-optimal" means. Outside ``d ≤ M ≤ Nd`` the
    proposition says nothing, and this raises.
    """
    n, d, m = check_positive_int(n, "n"), check_positive_int(d, "d"), check_positive_int(m, "m")
    if not d <= m <= n * d:
        raise ValueError(
            f"Proposition 3 holds for d <= M <= N·d, i.e. {d} <= M <= {n * d}; got M = {m}. "
            "Below d a single row does not fit on chip; above N·d everything fits and the "
            "traffic is just reading the inputs and writing the output"
        )
    return n * n * d * d / m


def attention_flops(n: int, d: int, *, n_k: int | None = None, pass_: str = "forward") -> int:
    """Matrix-product FLOPs of attention for one head: ``2·Nq·Nk·d`` per ``Nq × Nk`` product.

    * ``"forward"`` — ``S = QKᵀ`` and ``O = PV``: 2 products, ``4N²d``;
    * ``"backward_stored_p"`` — with ``P`` kept from the forward: ``dV = PᵀdO``,
      ``dP = dO Vᵀ``, ``dQ = dS K``, ``dK = dSᵀQ``: 4 products, ``8N²d``;
    * ``"backward"`` — FlashAttention's, recomputing ``S`` per tile: 5 products,
      ``10N²d`` = 2.5× the forward (the convention the papers' TFLOP/s use).

    Softmax, scaling and masking are not counted (the papers' accounting).
    """
    products = {"forward": 2, "backward_stored_p": 4, "backward": 5}
    if pass_ not in products:
        raise ValueError(f"pass_ must be one of {sorted(products)}, got {pass_!r}")
    nq, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    nk = nq if n_k is None else check_positive_int(n_k, "n_k")
    return products[pass_] * 2 * nq * nk * d


class SlowMemory:
    """An array in slow memory: the only way in or out is :meth:`load` / :meth:`store`, both counted."""

    def __init__(self, array: np.ndarray) -> None:
        self._data = array
        self.reads = 0
        self.writes = 0

    @classmethod
    def empty(cls, shape: tuple[int, ...], dtype: np.dtype | type = np.float64) -> SlowMemory:
        return cls(np.zeros(shape, dtype=dtype))

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    def load(self, index: object = ...) -> np.ndarray:
        """Copy a tile into "fast memory" (a fresh array), counting its elements."""
        tile = np.array(self._data[index], copy=True)
        self.reads += tile.size
        return tile

    def store(self, index: object, tile: np.ndarray) -> None:
        """Write a tile back, counting its elements."""
        self._data[index] = tile
        self.writes += np.size(self._data[index])

    def peek(self) -> np.ndarray:
        """The contents, for checking results afterwards (not counted: not part of the algorithm)."""
        return self._data

    @property
    def io(self) -> IOCount:
        return IOCount(self.reads, self.writes)


def _check_2d(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
    for name, a in (("q", q), ("k", k), ("v", v)):
        if np.ndim(a) != 2:
            raise ValueError(
                f"the instrumented runs count one head: {name} must be 2-D (N, d), got shape {np.shape(a)}"
            )
    if q.shape[1] != k.shape[1] or k.shape[0] != v.shape[0]:
        raise ValueError(f"incompatible shapes q{q.shape}, k{k.shape}, v{v.shape}")


def simulate_standard(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, *, scale: float | None = None
) -> tuple[np.ndarray, IOCount]:
    """Standard attention with S and P materialised in counted slow memory: ``(o, io)``."""
    _check_2d(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[1]) if scale is None else float(scale)
    nq, nk = q.shape[0], k.shape[0]
    hq, hk, hv = SlowMemory(q), SlowMemory(k), SlowMemory(v)
    hs = SlowMemory.empty((nq, nk), q.dtype)
    hp = SlowMemory.empty((nq, nk), q.dtype)
    ho = SlowMemory.empty((nq, v.shape[1]), q.dtype)
    hs.store(..., hq.load() @ hk.load().T * scale)  # 1. S = Q Kᵀ
    s = hs.load()  # 2. P = softmax(S)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    hp.store(..., p / p.sum(axis=1, keepdims=True))
    ho.store(..., hp.load() @ hv.load())  # 3. O = P V
    io = sum((h.io for h in (hq, hk, hv, hs, hp, ho)), IOCount(0, 0))
    return ho.peek().copy(), io


@dataclass(frozen=True)
class TiledRun:
    """Result of :func:`simulate_tiled`: output, traffic, and the most fast memory held at once."""

    o: np.ndarray
    lse: np.ndarray
    io: IOCount
    peak_fast_elements: int


def simulate_tiled(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int,
    block_k: int,
    causal: bool = False,
    scale: float | None = None,
) -> TiledRun:
    """The tiled forward with Q, K, V, O and L in counted slow memory.

    Same tiles and same online softmax as ``tiled_attention`` (tiles come from the
    same :func:`~flashtrade_lib.attention.reference.tile_schedule`), written with
    explicit loads and stores so the traffic can be counted; one head, no mask.
    """
    _check_2d(q, k, v)
    block_q, block_k = check_positive_int(block_q, "block_q"), check_positive_int(block_k, "block_k")
    scale = 1.0 / math.sqrt(q.shape[1]) if scale is None else float(scale)
    nq, nk, dv = q.shape[0], k.shape[0], v.shape[1]
    hq, hk, hv = SlowMemory(q), SlowMemory(k), SlowMemory(v)
    ho = SlowMemory.empty((nq, dv), q.dtype)
    hl = SlowMemory.empty((nq,), q.dtype)
    peak = 0
    current_q0 = None
    for q0, q1, k0, k1 in tile_schedule(nq, nk, block_q=block_q, block_k=block_k, causal=causal):
        if q0 != current_q0:  # a new row of tiles: load its Q tile, reset the statistics
            q_tile = hq.load(slice(q0, q1))
            m = np.full(q1 - q0, -np.inf)
            ell = np.zeros(q1 - q0)
            acc = np.zeros((q1 - q0, dv))
            current_q0 = q0
        k_tile, v_tile = hk.load(slice(k0, k1)), hv.load(slice(k0, k1))
        s = q_tile @ k_tile.T * scale
        if causal:
            s = np.where(np.arange(k0, k1)[None, :] <= np.arange(q0, q1)[:, None], s, -np.inf)
        m_new = np.maximum(m, s.max(axis=1))
        shift = np.where(np.isfinite(m_new), m_new, 0.0)
        alpha = np.exp(m - shift)
        p = np.exp(s - shift[:, None])
        ell = alpha * ell + p.sum(axis=1)
        acc = alpha[:, None] * acc + p @ v_tile
        m = m_new
        held = q_tile.size + k_tile.size + v_tile.size + p.size + acc.size + m.size + ell.size
        peak = max(peak, held)
        if k1 == nk or (causal and causal_block_skipped(q1, k1)):  # last tile of this row
            ho.store(slice(q0, q1), acc / ell[:, None])
            hl.store(slice(q0, q1), m + np.log(ell))
    io = sum((h.io for h in (hq, hk, hv, ho, hl)), IOCount(0, 0))
    return TiledRun(ho.peek().copy(), hl.peek().copy(), io, peak)


# --- The backward: key tiles outside, so dQ is read, updated and written back once per key tile ---


def backward_fast_memory_needed(block_q: int, block_k: int, d: int, d_v: int | None = None) -> int:
    """Elements held on chip during one tile step of the tiled backward.

    The key tile's ``K``, ``V`` and their gradient accumulators ``dK``, ``dV``; the query
    tile's ``Q``, ``dO`` and ``dQ`` and its ``L``, ``D``; the ``P`` and ``dS`` tiles.
    """
    bq, bk, d = check_positive_int(block_q, "block_q"), check_positive_int(block_k, "block_k"), check_positive_int(d, "d")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    return 2 * bk * (d + dv) + bq * (2 * d + dv + 2) + 2 * bq * bk


def backward_blocks_for_memory(m: int, d: int, d_v: int | None = None) -> tuple[int, int]:
    """The largest ``(block_q, block_k)`` whose backward tile step fits in ``m`` elements.

    The backward's outer loop runs over key tiles, so the *key* block is the large one
    (it sets how often Q, dO and dQ are streamed past) and the query block the small one,
    ``min(⌊M/4d⌋, d)`` — FlashAttention-1's rule, which the backward of FlashAttention-2 keeps.
    """
    m, d = check_positive_int(m, "m"), check_positive_int(d, "d")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    block_q = max(1, min(d, m // (4 * d)))
    block_k = (m - block_q * (2 * d + dv + 2)) // (2 * (d + dv) + 2 * block_q)
    if block_k < 1:
        raise ValueError(
            f"on-chip memory m={m} elements cannot hold one key row of the backward with d={d}, "
            f"d_v={dv}; it needs at least {backward_fast_memory_needed(1, 1, d, dv)}"
        )
    return int(block_q), int(block_k)


def tiled_backward_io(
    n: int,
    d: int,
    *,
    block_q: int,
    block_k: int,
    n_k: int | None = None,
    d_v: int | None = None,
    causal: bool = False,
) -> IOCount:
    """Slow-memory traffic of :func:`~flashtrade_lib.attention.reference.tiled_attention_backward`, per head.

    First ``D = rowsum(dO ∘ O)``: read ``dO`` and ``O``, write ``D``. Then for each key tile:
    read ``K_j``, ``V_j`` once and write ``dK_j``, ``dV_j`` once; for every query tile it
    visits, read ``Q_i``, ``dO_i``, ``L_i``, ``D_i`` and ``dQ_i``, and write ``dQ_i`` back —
    ``dQ``'s read-modify-write is paid once per key tile, ``⌈N_k/block_k⌉`` times in all,
    which makes the backward's traffic ``Θ(N²d²/M)`` too.
    """
    nq, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    nk = nq if n_k is None else check_positive_int(n_k, "n_k")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    bq, bk = check_positive_int(block_q, "block_q"), check_positive_int(block_k, "block_k")
    q_rows = 0  # query rows streamed past key tiles, summed over key tiles
    for k0 in range(0, nk, bk):
        for q0 in range(0, nq, bq):
            q1 = min(q0 + bq, nq)
            if not (causal and causal_block_skipped(q1, k0)):
                q_rows += q1 - q0
    reads = 2 * nq * dv + nk * (d + dv) + q_rows * (2 * d + dv + 2)
    writes = nq + nk * (d + dv) + q_rows * d
    return IOCount(reads, writes)


def tiled_backward_flops(
    n: int,
    d: int,
    *,
    block_q: int,
    block_k: int,
    n_k: int | None = None,
    d_v: int | None = None,
    causal: bool = False,
) -> int:
    """Matrix-product FLOPs of ``tiled_attention_backward``, per head, over the tiles it computes.

    Five products per (query tile, key tile) pair of ``r × c`` rows: ``S = QKᵀ`` and ``dQ += dS K``,
    ``dK += dSᵀQ`` (``2rcd`` each), ``dV += PᵀdO`` and ``dP = dO Vᵀ`` (``2rc·d_v`` each); tiles above the
    diagonal are skipped under ``causal``. Without it this is :func:`attention_flops`'s ``"backward"``.
    """
    nq, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    nk = nq if n_k is None else check_positive_int(n_k, "n_k")
    dv = d if d_v is None else check_positive_int(d_v, "d_v")
    bq, bk = check_positive_int(block_q, "block_q"), check_positive_int(block_k, "block_k")
    pairs = sum((min(q0 + bq, nq) - q0) * (min(k0 + bk, nk) - k0)
                for k0 in range(0, nk, bk) for q0 in range(0, nq, bq)
                if not (causal and causal_block_skipped(min(q0 + bq, nq), k0)))
    return 2 * pairs * (3 * d + 2 * dv)


def simulate_tiled_backward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    o: np.ndarray,
    lse: np.ndarray,
    do: np.ndarray,
    *,
    block_q: int,
    block_k: int,
    causal: bool = False,
    scale: float | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], IOCount]:
    """The tiled backward with every input and gradient in counted slow memory: ``((dq, dk, dv), io)``.

    Same loops as ``tiled_attention_backward`` (key tiles outside), written with explicit
    loads and stores; one head, no mask.
    """
    _check_2d(q, k, v)
    block_q, block_k = check_positive_int(block_q, "block_q"), check_positive_int(block_k, "block_k")
    scale = 1.0 / math.sqrt(q.shape[1]) if scale is None else float(scale)
    nq, nk = q.shape[0], k.shape[0]
    hq, hk, hv, ho, hl, hdo = (SlowMemory(a) for a in (q, k, v, o, lse, do))
    hd = SlowMemory.empty((nq,), q.dtype)
    hdq, hdk, hdv = SlowMemory.empty(q.shape, q.dtype), SlowMemory.empty(k.shape, q.dtype), SlowMemory.empty(
        v.shape, q.dtype)
    hd.store(..., (hdo.load() * ho.load()).sum(axis=1))  # D = rowsum(dO ∘ O)
    for k0 in range(0, nk, block_k):
        k1 = min(k0 + block_k, nk)
        k_tile, v_tile = hk.load(slice(k0, k1)), hv.load(slice(k0, k1))
        dk_tile, dv_tile = np.zeros_like(k_tile), np.zeros_like(v_tile)
        for q0 in range(0, nq, block_q):
            q1 = min(q0 + block_q, nq)
            if causal and causal_block_skipped(q1, k0):
                continue
            rows = slice(q0, q1)
            q_tile, do_tile, l_tile, d_tile = hq.load(rows), hdo.load(rows), hl.load(rows), hd.load(rows)
            s = q_tile @ k_tile.T * scale
            if causal:
                s = np.where(np.arange(k0, k1)[None, :] <= np.arange(q0, q1)[:, None], s, -np.inf)
            p = np.exp(s - l_tile[:, None])  # P recomputed from L
            dv_tile += p.T @ do_tile
            ds = p * (do_tile @ v_tile.T - d_tile[:, None]) * scale
            hdq.store(rows, hdq.load(rows) + ds @ k_tile)  # dQ: read, add, write back
            dk_tile += ds.T @ q_tile
        hdk.store(slice(k0, k1), dk_tile)
        hdv.store(slice(k0, k1), dv_tile)
    io = sum((h.io for h in (hq, hk, hv, ho, hl, hdo, hd, hdq, hdk, hdv)), IOCount(0, 0))
    return (hdq.peek().copy(), hdk.peek().copy(), hdv.peek().copy()), io
