"""From forecasts to an honest verdict: baselines and held-out scoring against them (chapters
6–7), position rules, the backtest, walk-forward, metrics and the statistics behind every
"beats" (chapters 8–9).

Module names are the concepts (``backtest``, ``metrics``, ``stats``, ``baselines``,
``walkforward``, ``cost_aware``, ``lookback``, ``trials``); the names below are the entry
points a chapter usually needs.
"""

from flashtrade_lib._exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "BacktestResult": "backtest",
        "DEFAULT_COST_BPS": "costs",
        "walk_forward": "walkforward",
        "sharpe": "metrics",
        "forecast_skill": "metrics",
        "periods_per_year": "metrics",
        "ridge_fit": "baselines",
        "fit_rule": "cost_aware",
        "lookback_sweep": "lookback",
        "book_ledger": "trials",
        "verdict": "stats",
        "skill_table": "heldout",
    },
)
