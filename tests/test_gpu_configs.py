"""The launch configurations of chapter 4: what each needs, checked against Triton's compiler.

``tile_budget`` is the chapter's arithmetic (held tiles plus streamed tiles times pipeline
buffers). Triton can compile for a GPU it does not have — ``triton.compile`` with a
``GPUTarget`` runs every compiler stage on the CPU — and the compiled kernel reports the
shared memory it allocates (``metadata.shared``). So the arithmetic is compared with the
compiler's own count, on sm90 and sm80, in a child process (the kernels must be real JIT
functions, not the interpreter's), with the arguments specialised as a real launch would
(pointers and strides divisible by 16).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flashtrade_lib.kernels import flash_attention as fa
from flashtrade_lib.measure.gpus import COMMON_GPUS

# (kernel, BLOCK_M, BLOCK_N, num_warps, num_stages, head_dim, compute capability)
COMPILED = [
    ("fwd", 128, 64, 8, 3, 128, 90),
    ("fwd", 128, 64, 8, 2, 128, 90),
    ("dkdv", 32, 128, 8, 3, 128, 90),
    ("dq", 128, 32, 8, 3, 128, 90),
    ("fwd", 128, 64, 4, 3, 128, 80),
    ("dkdv", 32, 128, 8, 2, 128, 80),
]
# one GPU per generation gpu_configs distinguishes: the smallest shared memory of that generation
GENERATIONS = {(9, 0): "H100 SXM5", (8, 0): "A100 40GB", (8, 6): "RTX 4090"}


def _compile_shared(cases: list[tuple]) -> list[int]:
    """Child-process side: compile each case for its GPU target and return ``metadata.shared``."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    out = []
    for kernel, bm, bn, warps, stages, d, cc in cases:
        fn = fa._KERNELS[kernel]
        names = fn.arg_names
        consts = {"CAUSAL": False, "HEAD_DIM": d, "BLOCK_D": d, "BLOCK_M": bm, "BLOCK_N": bn}

        def kind(p: str, consts: dict = consts) -> str:
            if p in consts:
                return "constexpr"
            if p in ("L", "Dl"):
                return "*fp32"
            if p in ("Q", "K", "V", "O", "DO", "DK", "DV", "DQ"):
                return "*bf16"
            return "fp32" if p == "sm_scale" else "i32"

        signature = {p: kind(p) for p in names}
        attrs = {(i,): [["tt.divisibility", 16]] for i, p in enumerate(names)
                 if signature[p] not in ("constexpr", "fp32")}
        src = ASTSource(fn=fn, signature=signature, attrs=attrs,
                        constexprs={(names.index(k),): v for k, v in consts.items()})
        compiled = triton.compile(src, target=GPUTarget("cuda", cc, 32),
                                  options={"num_warps": warps, "num_stages": stages})
        out.append(compiled.metadata.shared)
    return out


@pytest.mark.parametrize("capability", sorted(GENERATIONS), ids=lambda c: f"sm{c[0]}{c[1]}")
def test_every_config_fits_its_generation(capability):
    """No listed configuration needs more shared memory or registers than its GPUs have."""
    gpu = next(g for g in COMMON_GPUS if g["gpu"].startswith(GENERATIONS[capability]))
    for kernel in fa.TILES:
        for config in fa.gpu_configs(capability, kernel):
            for d in (64, 128):
                need = fa.tile_budget(kernel, config, d, capability=capability)
                assert need["shared_bytes"] <= gpu["shared KB/SM (max)"] * 1024, (kernel, config, d, need)
                assert need["fp32_registers_per_thread"] <= 255, (kernel, config, d, need)


def test_dkdv_holds_keys_and_streams_queries():
    """Why dK/dV uses a small BLOCK_M: its accumulators grow with BLOCK_N, its loop temporaries with BLOCK_M."""
    import triton

    small_m = fa.tile_budget("dkdv", triton.Config({"BLOCK_M": 32, "BLOCK_N": 128}, num_warps=8, num_stages=3), 128)
    big_m = fa.tile_budget("dkdv", triton.Config({"BLOCK_M": 128, "BLOCK_N": 128}, num_warps=8, num_stages=3), 128)
    assert big_m["shared_bytes"] > small_m["shared_bytes"]
    assert big_m["fp32_registers_per_thread"] > small_m["fp32_registers_per_thread"]
    with pytest.raises(ValueError, match="unknown kernel"):
        fa.tile_budget("bwd", fa.gpu_configs((9, 0), "fwd")[0], 64)


@pytest.mark.slow
def test_tile_budget_matches_the_compilers_shared_memory():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    compiled = json.loads(proc.stdout.strip().splitlines()[-1])
    import triton

    for (kernel, bm, bn, warps, stages, d, cc), shared in zip(COMPILED, compiled, strict=True):
        config = triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=warps, num_stages=stages)
        model = fa.tile_budget(kernel, config, d, capability=(cc // 10, cc % 10))["shared_bytes"]
        # the compiler may add the row statistics (L, D) and stage one score tile to change its layout
        slack = bm * bn * 2 + 1024
        assert model <= shared <= model + slack, (
            f"{kernel} {config} sm{cc}: the compiler allocates {shared} B of shared memory, "
            f"tile_budget says {model} B (allowed up to {slack} B more)")


if __name__ == "__main__":
    print(json.dumps(_compile_shared(COMPILED)))
