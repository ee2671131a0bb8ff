"""Chapter 6 (06_training) — instructor's solutions (not installed with flashtrade_lib)."""

import math

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch06-saved-probabilities")
def nxn_bytes(batch, heads, layers, context):
    return layers * batch * heads * context * context * 4


@wrong("ch06-saved-probabilities", expect="one layer only")
def nxn_bytes_of_one_layer(batch, heads, layers, context):
    return batch * heads * context * context * 4


@solution("ch06-lr-schedule")
def schedule(step, total, warmup, floor):
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@wrong("ch06-lr-schedule", expect="during the cosine decay")
def schedule_to_zero(step, total, warmup, floor):
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))  # ignores the floor
