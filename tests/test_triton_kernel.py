"""The Triton FlashAttention kernels, run on CPU tensors by Triton's interpreter.

``TRITON_INTERPRET=1`` must be set before the kernels are defined, and it then holds for
the whole process. So the kernels run in *one child process* (this file, run as a
script), which reports max errors as JSON; the tests below judge them. That keeps the
pytest process itself free to compile real GPU kernels in ``tests/test_gpu.py``.

This checks correctness only; the interpreter is far too slow to say anything about speed.
Shapes are small and blocks large (64), because interpreter cost grows with the number of
program instances. Every case compares forward *and* gradients with plain float64 attention.
The fp16 tolerance is not chosen: it is the first-order rounding bound of a kernel that
accumulates in fp32 and rounds P and dS to the input dtype
(:func:`flashtrade_lib.attention.numerics.attention_error_bounds`, derived in chapter 3),
evaluated on that case's own inputs. The fp32 cases check the kernel's logic against a
fixed few hundred fp32 ulps (the worst-case fp32 bound is far looser than the real error).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

# (name, batch, heads, n_q, n_k, d, causal, blocks, dtype)
CASES = [
    ("odd-N", 1, 2, 100, 100, 32, False, None, "float32"),
    ("odd-N-causal", 1, 2, 100, 100, 32, True, None, "float32"),
    ("single-token", 1, 1, 1, 1, 16, True, None, "float32"),
    ("exact-block", 1, 1, 64, 64, 64, True, None, "float32"),
    ("block-plus-one", 1, 1, 65, 65, 64, False, None, "float32"),
    ("causal-bm<bn-head24", 2, 1, 77, 77, 24, True, (32, 64), "float32"),
    ("causal-bm>bn-head128", 1, 1, 130, 130, 128, True, (64, 32), "float32"),
    ("cross-nq<nk", 1, 1, 45, 70, 64, False, (64, 32), "float32"),
    ("cross-nq>nk", 1, 1, 70, 45, 48, False, (32, 32), "float32"),
    ("batch-heads-strided", 2, 3, 50, 50, 32, True, None, "float32"),
    ("fp16-causal", 1, 2, 90, 90, 64, True, None, "float16"),
]
FP32_TOL = 2e-5


def _run_cases() -> dict:
    """Child-process side: run every case under the interpreter, return errors per case."""
    import math
    import traceback

    import torch

    from flashtrade_lib.attention.backends import attention, choose_backend
    from flashtrade_lib.attention.numerics import attention_error_bounds
    from flashtrade_lib.kernels import flash_attention as fa

    out: dict = {"interpreted": fa.INTERPRETED, "cases": {}, "bounds": {}, "errors": {}}
    for name, b, h, n_q, n_k, d, causal, blocks, dtype in CASES:
        try:
            g = torch.Generator().manual_seed(len(name))
            dt = getattr(torch, dtype)
            if name == "batch-heads-strided":  # q, k, v as views of one packed (B, N, 3, H, d) tensor
                packed = torch.randn(b, n_q, 3, h, d, generator=g)
                q, k, v = (packed[:, :, i].transpose(1, 2) for i in range(3))
            else:
                q = torch.randn(b, h, n_q, d, generator=g)
                k = torch.randn(b, h, n_k, d, generator=g)
                v = torch.randn(b, h, n_k, d, generator=g)
            q, k, v = (t.to(dt).requires_grad_() for t in (q, k, v))
            o, L = fa.flash_attention_forward(q, k, v, causal=causal, blocks=blocks)
            o2 = fa.flash_attention(q, k, v, causal=causal, blocks=blocks)
            do = torch.randn(o2.shape, generator=g).to(dt)
            grads = torch.autograd.grad(o2, (q, k, v), do)

            # float64 ground truth, by the definition
            q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
            s = q64 @ k64.transpose(-2, -1) / math.sqrt(d)
            if causal:
                s = s.masked_fill(torch.ones(n_q, n_k, dtype=torch.bool).triu(1), float("-inf"))
            ref = torch.softmax(s, -1) @ v64
            ref_grads = torch.autograd.grad(ref, (q64, k64, v64), do.double())
            scale = max(1.0, ref.abs().max().item())
            bound = attention_error_bounds(*(t.detach().double().numpy() for t in (q, k, v, do)),
                                           dtype=dtype, causal=causal)
            out["bounds"][name] = {"o": bound["o"] / scale, "autograd_o": bound["o"] / scale, "L": bound["lse"],
                                   **{f"d{n}": bound[f"d{n}"] / max(1.0, rg.abs().max().item())
                                      for n, rg in zip("qkv", ref_grads, strict=True)}}
            out["cases"][name] = {
                "o": (o.double() - ref).abs().max().item() / scale,
                "autograd_o": (o2.double() - ref).abs().max().item() / scale,
                "L": (L.double() - torch.logsumexp(s, -1)).abs().max().item(),
                **{f"d{n}": ((gr.double() - rg).abs().max() / max(1.0, rg.abs().max().item())).item()
                   for n, gr, rg in zip("qkv", grads, ref_grads, strict=True)},
                "dtypes": [str(t.dtype) for t in (o2, *grads)],
            }
        except Exception:
            out["errors"][name] = traceback.format_exc()

    # the same kernel through the one attention API; "auto" must still not pick the interpreter
    q, k, v = (torch.randn(1, 2, 40, 32, generator=torch.Generator().manual_seed(i)) for i in range(3))
    out["api_vs_naive"] = (attention(q, k, v, causal=True, backend="triton")
                           - attention(q, k, v, causal=True, backend="naive")).abs().max().item()
    out["auto_choice"] = choose_backend(q, k, v).name

    refusals = {}
    for label, call in {
        "bf16": lambda: fa.flash_attention(q.bfloat16(), k.bfloat16(), v.bfloat16()),
        "head_dim_8": lambda: fa.flash_attention(q[..., :8], k[..., :8], v[..., :8]),
        "causal_nq_ne_nk": lambda: fa.flash_attention(q[:, :, :10], k, v, causal=True),
    }.items():
        try:
            call()
            refusals[label] = "no error"
        except (TypeError, ValueError) as exc:
            refusals[label] = f"{type(exc).__name__}: {exc}"
    out["refusals"] = refusals
    return out


@lru_cache(maxsize=1)
def _results() -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        capture_output=True, text=True, env=env, timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"the interpreter worker crashed:\n{proc.stderr[-4000:]}", pytrace=False)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_worker_used_the_interpreter():
    assert _results()["interpreted"] is True


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_forward_and_gradients_match_float64(case):
    name, dtype = case[0], case[-1]
    res = _results()
    assert name not in res["errors"], res["errors"].get(name)
    errs = res["cases"][name]
    bounds = res["bounds"][name] if dtype != "float32" else {
        **dict.fromkeys(("o", "autograd_o", "dq", "dk", "dv"), FP32_TOL), "L": 10 * FP32_TOL}
    for key in ("o", "autograd_o", "dq", "dk", "dv", "L"):
        assert errs[key] <= bounds[key], (
            f"{name}: max error of {key} is {errs[key]:.2e}, above the rounding bound {bounds[key]:.2e} "
            "derived for a kernel that accumulates in fp32 and rounds P and dS to the input dtype")
    assert set(errs["dtypes"]) == {f"torch.{dtype}"}, "outputs and gradients keep the input dtype"


def test_attention_api_runs_the_kernel_but_auto_does_not_choose_it():
    res = _results()
    assert res["api_vs_naive"] < 1e-5
    assert res["auto_choice"] == "sdpa"


def test_kernel_refuses_what_it_cannot_do():
    ref = _results()["refusals"]
    assert ref["bf16"].startswith("TypeError") and "bfloat16" in ref["bf16"]
    assert ref["head_dim_8"].startswith("ValueError") and "16 to 128" in ref["head_dim_8"]
    assert ref["causal_nq_ne_nk"].startswith("ValueError") and "as many queries" in ref["causal_nq_ne_nk"]


def test_matmul_counts_the_chapter_states_are_the_kernels():
    """MATMULS_PER_TILE (which chapter 4 prints) agrees with the ``tl.dot`` calls in each kernel's source."""
    import ast

    tree = ast.parse((Path(__file__).resolve().parents[1] / "kernels" / "flash_attention.py").read_text())
    stated = next(ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MATMULS_PER_TILE")
    counted = {
        fn.name: sum(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "dot"
                     and getattr(c.func.value, "id", "") == "tl" for c in ast.walk(fn))
        for fn in tree.body if isinstance(fn, ast.FunctionDef) and fn.name in stated
    }
    assert counted == stated


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") != "1":
        sys.exit("run with TRITON_INTERPRET=1 (tests/test_triton_kernel.py does that for you)")
    print(json.dumps(_run_cases()))
