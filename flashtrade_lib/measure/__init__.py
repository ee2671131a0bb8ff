"""Measuring honestly: timing and peak memory, benchmark records and their own quality
verdict, the machine's description and the GPU catalogue (every chapter; ``benchmarks/``).
"""

from flashtrade_lib._exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "time_calls": "bench",
        "peak_memory": "bench",
        "load_record": "bench",
        "write_record": "bench",
        "provenance": "bench",
        "environment_report": "env",
        "pick_device": "env",
    },
)
