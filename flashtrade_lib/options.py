"""Command-line options for a model's size: one definition for every front end.

Why: ``flashtrade train``, ``flashtrade bench`` and the benchmark scripts each copied the same
three ``--d-model/--n-heads/--n-layers`` lines. Only ``argparse`` is imported, so a
``--help`` stays instant.
"""

from __future__ import annotations

import argparse

__all__ = ["OBJECTIVES", "add_model_size_options", "positive_int"]

OBJECTIVES = ("regression", "direction", "allocation", "multi")
"""What a model's loss can train (:class:`flashtrade_lib.model.train.TrainConfig`)."""


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number ≥ 1, with a message naming what was given."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_model_size_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, d_model: int = 64, n_heads: int = 4,
    n_layers: int = 2,
) -> None:
    """Add ``--d-model``, ``--n-heads`` and ``--n-layers`` (the defaults a front end sizes for)."""
    parser.add_argument("--d-model", type=positive_int, default=d_model, help="width of the transformer")
    parser.add_argument("--n-heads", type=positive_int, default=n_heads,
                        help="attention heads (must divide --d-model)")
    parser.add_argument("--n-layers", type=positive_int, default=n_layers, help="transformer blocks")
