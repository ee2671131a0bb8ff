"""How long ``flashtrade ... --help`` takes, per command: the command line's first impression.

    .venv/bin/python benchmarks/cli_help.py               # every command, 5 runs each
    .venv/bin/python benchmarks/cli_help.py --repeat 9

Each run is a fresh process of the installed entry point (``python -m flashtrade_lib.cli``, the
code the ``flashtrade`` script calls), so the time is what a person waits: the interpreter's
start, the imports and the help text. The target is under 1 s: ``--help`` must not import
torch or pandas (the parser reads the backend registry only when a backend is named). The
record keeps every run, the median per command, the machine's load during the runs, and
whether every median met the target.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from flashtrade_lib.measure.bench import add_max_wait_option, watch_machine, write_record

COMMANDS = ("", "fetch", "train", "predict", "backtest", "bench", "course")
TARGET_S = 1.0


def time_help(command: str, repeat: int) -> list[float]:
    """Wall seconds of ``repeat`` fresh ``flashtrade [command] --help`` processes."""
    argv = [sys.executable, "-m", "flashtrade_lib.cli", *command.split(), "--help"]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0 or "usage: flashtrade" not in proc.stdout:
            raise RuntimeError(f"`flashtrade {command} --help` failed: {proc.stderr.strip()[-500:]}")
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--commands", nargs="+", default=list(COMMANDS), help="commands to time ('' = the top level)")
    p.add_argument("--repeat", type=int, default=5, help="fresh processes per command")
    add_max_wait_option(p)
    p.add_argument("--out", default="cli_help", help="a record name (bench.results_dir() / NAME.json) or a path")
    args = p.parse_args(argv)
    with watch_machine(args.max_wait) as watch:
        rows = [{"command": f"flashtrade {c} --help".replace("  ", " "), "times_s": time_help(c, args.repeat)}
                for c in args.commands]
    for row in rows:
        row["median_s"] = statistics.median(row["times_s"])
        print(f"{row['command']:32s} {row['median_s']:.2f} s (median of {args.repeat})")
    write_record(args.out, {
        "benchmark": "cli_help",
        "description": "wall time of `flashtrade [command] --help` in a fresh process",
        "settings": {"repeat": args.repeat, "target_s": TARGET_S},
        "rows": rows,
        "meets_target": all(r["median_s"] < TARGET_S for r in rows),
    }, load=watch.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
