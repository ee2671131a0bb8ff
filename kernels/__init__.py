"""GPU kernels of chapter 4, importable as ``flashtrade_lib.kernels``.

* :mod:`flashtrade_lib.kernels.flash_attention` — FlashAttention forward and backward
  in Triton, wrapped in a ``torch.autograd.Function`` (``flash_attention(q, k, v)``).
* :mod:`flashtrade_lib.kernels.cuda_forward` — a minimal CUDA C++ forward kernel,
  compiled on first use with ``torch.utils.cpp_extension.load_inline`` (GPU only,
  for teaching).

Nothing is imported here: importing Triton decides, once, whether kernels are
compiled for the GPU or for the CPU interpreter (``TRITON_INTERPRET=1``), so the
caller must be able to set that environment variable first.
"""
