"""Execute the book's chapters into the jupyter-cache the book build reads, several at a time.

Why: myst-nb executes the chapters one after another, and a chapter's kernel keeps about one
core busy, so on a 2-core machine the build leaves a core idle for most of its run. This script
executes each chapter exactly as myst-nb's ``cache`` mode does — jupyter-cache's
``single_nb_execution`` in the chapter's folder, with ``_config.yml``'s timeout and
``allow_errors`` — and stores the result under the key myst-nb looks up, so ``jupyter-book
build`` then finds every chapter executed and executes none (and the course guide's *Time per
chapter* table shows these runs' times). A chapter whose cached execution still matches its
code is not run again. ``make test`` uses two jobs of one thread each (more threads per kernel
only spin on a core the other job needs; checked outputs hold at any thread count, ``make
portability``); ``make book`` one job with the libraries' own threads, so that a reader's build
measures each chapter's timings on an otherwise quiet machine::

    python scripts/execute_chapters.py --cache _build/.jupyter_cache --jobs 2 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from check_outputs import ROOT, chapters, use_threads  # noqa: E402 — one list of the book's notebooks

sys.path.insert(0, str(ROOT / "book" / "_ext"))


def execution_settings() -> tuple[int, bool]:
    """``(timeout per cell in s, allow_errors)`` from ``_config.yml``, as the book build reads them."""
    execute = yaml.safe_load((ROOT / "_config.yml").read_text()).get("execute", {})
    return int(execute.get("timeout", 30)), bool(execute.get("allow_errors", False))


def run_chapter(path: str, timeout: int, allow_errors: bool) -> tuple[str, float, str | None]:
    """One chapter in a fresh kernel, as myst-nb runs it: ``(executed notebook, seconds, error or None)``."""
    from flashtrade_offline import kernels_over_ipc
    from jupyter_cache.executors.utils import single_nb_execution

    kernels_over_ipc()  # as the book build's kernels: IPC, not unencrypted TCP
    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=allow_errors,
                                 meta_override=True)
    return nbformat.writes(nb), result.time, (result.exc_string or repr(result.err)) if result.err else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="the book build's jupyter-cache folder")
    parser.add_argument("--jobs", type=int, default=1, help="chapters executed at once (default 1)")
    parser.add_argument("--threads", type=int, help="CPU threads of each chapter's kernel (OMP/MKL/torch; "
                        "default: the libraries' own)")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook of the book")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        use_threads(args.threads)
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(args.cache)
    todo = []
    for path in [p.resolve() for p in args.notebooks] or chapters():
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            todo.append(path)
    # The later chapters train models and run longest: started first, they leave the short ones to fill in.
    todo.reverse()
    timeout, allow_errors = execution_settings()
    print(f"executing {len(todo)} of the book's notebooks, {args.jobs} at a time "
          f"(the others' cached executions match their code)", flush=True)
    failed = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        running = {pool.submit(run_chapter, str(p), timeout, allow_errors): p for p in todo}
        for done in as_completed(running):
            path = running[done]
            name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
            executed, seconds, error = done.result()
            if error:
                failed.append(name)
                print(f"{name}: FAILED after {seconds:.0f} s\n{error}", flush=True)
                continue
            record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(nbformat.reads(executed, as_version=4), record.uri,
                              data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            print(f"{name}: executed in {seconds:.0f} s", flush=True)
    print(f"{len(todo) - len(failed)} executed, {len(failed)} failed, in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
