"""Every attention implementation refuses the same bad inputs the same way.

NaN or inf in q, k or v; a scale that is a bool, inf, NaN, negative or not a number;
a ``causal`` that is not a bool. The NumPy reference (``naive_attention``,
``tiled_attention``) and every torch backend runnable on this CPU — derived from the
backend table, so the Triton kernel under ``TRITON_INTERPRET=1`` is among them — must
give the same verdict: the same error class with the same message, or (for accepted
inputs such as a NumPy float32 scale) the same numbers. ``TRITON_INTERPRET`` must be
set before the kernels are first imported, so the calls run in one child process
(this file as a script), which reports each verdict as JSON.

A fully *masked* row (a query that may attend no key; only the reference takes a mask)
is not a NaN row: it is well defined and returns zeros.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from flashtrade_lib.attention import naive_attention, tiled_attention

N, D = 8, 16


def _inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(0)
    return tuple(g.standard_normal((1, 2, N, D)).astype(np.float32) for _ in range(3))  # type: ignore[return-value]


def _cases() -> dict[str, dict]:
    """name -> {"poison": (tensor, index, value) or None, "scale": ..., "causal": ...}."""
    cases: dict[str, dict] = {}
    for t in "qkv":
        for where, index in (("first", (0, 0, 0, 0)), ("last", (0, 1, N - 1, D - 1)), ("middle", (0, 0, 3, 5))):
            cases[f"nan in {t}, {where}"] = {"poison": (t, index, float("nan"))}
        cases[f"+inf in {t}"] = {"poison": (t, (0, 1, 2, 3), float("inf"))}
        cases[f"-inf in {t}"] = {"poison": (t, (0, 0, 6, 0), float("-inf"))}
    for label, scale in {"bool": True, "numpy bool": np.bool_(True), "inf": float("inf"), "nan": float("nan"),
                         "negative": -0.5, "zero": 0.0, "string": "0.25", "list": [0.25]}.items():
        cases[f"scale {label}"] = {"scale": scale}
    for label, scale in {"numpy float32": np.float32(0.3), "numpy float64": np.float64(0.3),
                         "python int": 1, "numpy int": np.int64(1)}.items():
        cases[f"scale {label} (accepted)"] = {"scale": scale}
    for label, causal in {"int": 1, "string": "yes", "none": None, "float": 0.0}.items():
        cases[f"causal {label}"] = {"causal": causal}
    cases["causal numpy bool (accepted)"] = {"causal": np.bool_(True)}
    return cases


def _verdict(fn, *args, **kwargs) -> dict:
    try:
        out = np.asarray(fn(*args, **kwargs), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 — the class and message are the verdict
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"out": out.round(5).tolist()}


def _torch_attention(q, k, v, **kwargs) -> np.ndarray:
    from flashtrade_lib.attention.backends import attention

    return attention(q, k, v, **kwargs).numpy()


def _run_all() -> dict:
    """Child side: the verdict of every implementation on every case."""
    import dataclasses

    import torch

    from flashtrade_lib.attention.backends import default_capabilities, usable_backends

    caps = dataclasses.replace(default_capabilities(head_dim=D), device="cpu", dtype="float32",
                               compute_capability=None)
    names = usable_backends(caps)
    results: dict = {"backends": names, "cases": {}}
    for case, spec in _cases().items():
        q, k, v = (a.copy() for a in _inputs())
        if spec.get("poison"):
            t, index, value = spec["poison"]
            {"q": q, "k": k, "v": v}[t][index] = value
        kw = {"scale": spec.get("scale"), "causal": spec.get("causal", True)}
        row = {
            "reference naive": _verdict(naive_attention, q, k, v, **kw),
            "reference tiled": _verdict(tiled_attention, q, k, v, block_q=4, block_k=4, **kw),
        }
        tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
        for name in [*names, "auto"]:
            row[name] = _verdict(_torch_attention, tq, tk, tv, backend=name, **kw)
        results["cases"][case] = row
    return results


@lru_cache(maxsize=1)
def _results() -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], capture_output=True, text=True,
                          env=env, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"the worker crashed:\n{proc.stderr[-4000:]}", pytrace=False)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_cpu_backend_is_checked_triton_included() -> None:
    backends = _results()["backends"]
    assert {"naive", "sdpa", "sdpa:flash", "sdpa:math", "triton"} <= set(backends), backends


@pytest.mark.parametrize("case", sorted(_cases()))
def test_all_implementations_agree(case: str) -> None:
    row = _results()["cases"][case]
    verdicts = {name: json.dumps(v, sort_keys=True) if "error" in v else "out" for name, v in row.items()}
    assert len(set(verdicts.values())) == 1, f"{case}: implementations disagree: {row if len(str(row)) < 3000 else verdicts}"
    first = next(iter(row.values()))
    if "(accepted)" in case:
        assert "out" in first, f"{case}: refused: {first}"
        outs = [np.asarray(v["out"]) for v in row.values()]
        for name, out in zip(row, outs, strict=True):
            np.testing.assert_allclose(out, outs[0], atol=2e-4, err_msg=f"{case}: {name} differs")
    else:
        assert first.get("error") in ("ValueError", "NonFiniteInputError"), f"{case}: not refused: {first}"
        if case.startswith(("nan", "+inf", "-inf")):
            assert first["error"] == "NonFiniteInputError" and "non-finite" in first["message"]


def test_a_fully_masked_row_is_zeros_not_an_error() -> None:
    q, k, v = _inputs()
    mask = np.ones((N, N), dtype=bool)
    mask[2] = False  # query 2 may attend no key
    for fn in (naive_attention, lambda *a, **kw: tiled_attention(*a, block_q=4, block_k=4, **kw)):
        out = fn(q, k, v, mask=mask)
        assert np.isfinite(out).all() and (out[..., 2, :] == 0).all()


def test_the_refusal_says_which_tensor_and_where() -> None:
    msg = _results()["cases"]["nan in k, middle"]["naive"]["message"]
    assert msg.startswith("k holds 1 non-finite value") and "(0, 0, 3, 5)" in msg


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") != "1":
        sys.exit("run with TRITON_INTERPRET=1 (tests/test_attention_contract.py does that for you)")
    print(json.dumps(_run_all()))
