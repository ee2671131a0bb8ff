"""Chapter 1 (01_attention_bottleneck) — instructor's solutions (not installed with flashtrade_lib)."""

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch01-score-bytes")
def score_matrix_bytes(n, *, heads=1, batch=1, itemsize=4):
    return batch * heads * n * n * itemsize


@wrong("ch01-score-bytes", expect="each batch element and each head has its own")
def score_matrix_bytes_of_one_head(n, *, heads=1, batch=1, itemsize=4):
    return n * n * itemsize


@solution("ch01-context-days")
def context_days(n, bar):
    return n / {"1min": 1440, "1h": 24, "1d": 1}[bar]


@wrong("ch01-context-days", expect="equity-session hours")
def context_days_in_equity_sessions(n, bar):
    return n / {"1min": 390, "1h": 6.5, "1d": 1}[bar]
