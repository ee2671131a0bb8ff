"""Low-precision facts and the derived error bounds: checked against exact emulation and torch's own formats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flashtrade_lib.attention.numerics import (
    attention_error_bounds,
    exp_overflow_threshold,
    gamma,
    round_to,
    unit_roundoff,
)


def test_unit_roundoff_and_overflow_thresholds() -> None:
    assert unit_roundoff("float16") == 2**-11 and unit_roundoff(np.float32) == 2**-24
    assert unit_roundoff("torch.bfloat16") == 2**-8
    assert exp_overflow_threshold("float16") == pytest.approx(11.0898, abs=1e-4)
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float16(11.1))) and np.isfinite(np.exp(np.float16(11.08)))
    with pytest.raises(ValueError, match="dtype"):
        unit_roundoff("int8")


def test_bfloat16_rounding_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(10_000) * 100
    ours = round_to(x, "bfloat16")
    theirs = torch.tensor(x, dtype=torch.float32).bfloat16().double().numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert np.all(np.abs(ours - x.astype(np.float32)) <= unit_roundoff("bfloat16") * np.abs(x) * (1 + 1e-6))


def test_gamma_refuses_meaningless_sizes() -> None:
    assert gamma(10, 0.01) == pytest.approx(0.1 / 0.9)
    with pytest.raises(ValueError, match="n·u"):
        gamma(200, 0.01)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("causal", [False, True])
def test_forward_bound_covers_an_emulated_kernel(dtype: str, causal: bool) -> None:
    """P rounded before PV, fp32-exact accumulation, O stored rounded: the error stays under the bound."""
    rng = np.random.default_rng(1)
    q, k, v = (round_to(rng.standard_normal((96, 32)) * 2, dtype) for _ in range(3))
    s = q @ k.T / math.sqrt(32)
    if causal:
        s = np.where(np.tril(np.ones_like(s, dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    ell = p.sum(axis=1, keepdims=True)
    exact = (p / ell) @ v
    kernel = round_to((round_to(p, dtype) @ v) / ell, dtype)
    bounds = attention_error_bounds(q, k, v, rng.standard_normal((96, 32)), dtype=dtype, causal=causal)
    err = np.abs(kernel - exact).max()
    assert err <= bounds["o"], (err, bounds["o"])
    assert bounds["o"] < 10 * unit_roundoff(dtype) * np.abs(v).max(), "a bound is only useful if it is tight-ish"
    assert set(bounds) == {"o", "lse", "dq", "dk", "dv"}
    assert attention_error_bounds(q, k, v, dtype=dtype).keys() == {"o", "lse"}
