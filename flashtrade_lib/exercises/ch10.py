"""Exercise checks for chapter 10 (beyond one series: cross-asset tokens, order books)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from flashtrade_lib.exercises import Feedback, register


@register(
    "ch10-imbalance",
    title="Order imbalance of the first levels of a book",
)
def _grade_imbalance(answer: Callable[..., np.ndarray]) -> Feedback:
    from flashtrade_lib.data.lob_sim import order_imbalance, simulate_lob

    if not callable(answer):
        return Feedback(False, f"expected a function imbalance(snapshots, levels), got {type(answer).__name__}")
    snaps = simulate_lob(500, seed=3).snapshots
    for levels in (1, 3):
        got = np.asarray(answer(snaps, levels), dtype=np.float64)
        want = order_imbalance(snaps, levels)
        if got.shape != want.shape:
            return Feedback(False, f"levels={levels}: expected one value per snapshot, shape {want.shape}; "
                                   f"got {got.shape}. Sum sizes over the level axis (axis=-1 after slicing).")
        if np.allclose(got, -want):
            return Feedback(False, "the sign is reversed: imbalance is (bid size - ask size) / total, "
                                   "positive when buyers queue up (which points to an up move).")
        if not np.allclose(got, want, atol=1e-12):
            return Feedback(False, f"levels={levels}: values differ from (B - A) / (B + A) with B, A the "
                                   "bid and ask sizes summed over the first `levels` levels "
                                   "(bid size is field 1, ask size field 3).")
    return Feedback(True, "right: (B - A) / (B + A), in [-1, 1]; its sign is the baseline the model must beat.")


# --------------------------------------------------------------------- cross-sectional rank IC

_IC_COLUMNS = ("pooled IC", "cross-sectional rank IC")


def _ic_market() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Six assets that share a market move: one forecast times the market, one ranks the assets."""
    rng = np.random.default_rng(10)
    bars, assets = 400, 6
    market, own = rng.normal(size=(bars, 1)), rng.normal(size=(bars, assets))
    outcome = market + 0.6 * own + 0.8 * rng.normal(size=(bars, assets))
    picker = np.round(own + 0.7 * rng.normal(size=(bars, assets)), 0)  # coarse: ties within a bar
    picker[::7] = 1.0  # no view on every 7th bar: the same forecast for every asset
    forecasts = {
        "market timing": market + 0.01 * rng.normal(size=(bars, assets)),
        "asset picker (coarse)": picker,
        "both": market + own + rng.normal(size=(bars, assets)),
    }
    return forecasts, outcome


def _expected_ic_table(forecasts: dict[str, np.ndarray], outcome: np.ndarray) -> pd.DataFrame:
    from flashtrade_lib.trading.heldout import cross_sectional_ic
    from flashtrade_lib.trading.metrics import forecast_skill

    rows = {name: {"pooled IC": forecast_skill(f.ravel(), outcome.ravel()).ic,
                   "cross-sectional rank IC": float(np.nanmean(cross_sectional_ic(f, outcome)))}
            for name, f in forecasts.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def _xs_mistakes(f: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The cross-sectional column computed with each typical mistake."""
    from scipy.stats import rankdata, spearmanr

    from flashtrade_lib.trading.heldout import cross_sectional_ic

    def per_row(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        den = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (a * b).sum(axis=1) / den, np.nan)

    ordinal = np.argsort(np.argsort(f, axis=1, kind="stable"), axis=1).astype(float)
    per_asset = [spearmanr(f[:, a], y[:, a]).statistic for a in range(f.shape[1])]
    return {
        "pooled": float(spearmanr(f.ravel(), y.ravel()).statistic),
        "per asset": float(np.nanmean(per_asset)),
        "pearson": float(np.nanmean(per_row(f, y))),
        "flat bars as 0": float(np.nan_to_num(cross_sectional_ic(f, y)).mean()),
        "ties": float(np.nanmean(per_row(ordinal, rankdata(y, axis=1)))),
    }


_XS_WHY = {
    "pooled": "That is one rank correlation over every (bar, asset) pair: pooled, it mostly measures whether the "
              "forecast caught the common market move. Correlate across the assets within each bar, then average.",
    "per asset": "You correlated each asset's forecasts with its outcomes along time (one IC per asset): that is a "
                 "time-series IC. The cross-sectional IC correlates across the assets at one bar (axis=1).",
    "pearson": "You took Pearson correlations within each bar; the rank IC correlates the ranks "
               "(scipy.stats.rankdata(..., axis=1)), so one extreme asset cannot dominate a bar.",
    "flat bars as 0": "You counted the bars where the forecast is the same for every asset as an IC of 0: their "
                      "correlation is undefined (NaN) — drop them before averaging (np.nanmean).",
    "ties": "Tied forecasts got different ranks: give ties their average rank (scipy.stats.rankdata does).",
}


@register(
    "ch10-cross-sectional-ic",
    title="A cross-sectional rank IC, and what it changes in the layout comparison",
    hints=(
        "One number per bar: the Spearman correlation of that bar's forecasts and outcomes across the assets "
        "(the row of a (bars, assets) array).",
        "scipy.stats.rankdata(x, axis=1) ranks each row (ties get their average rank); a Pearson correlation of "
        "two rows of ranks is their Spearman correlation.",
        "A bar whose forecasts (or outcomes) are all equal has no correlation: NaN. Average the others "
        "(np.nanmean). The pooled IC is one Pearson correlation of the flattened arrays.",
    ),
    references=("flashtrade_lib.trading.heldout:cross_sectional_ic",),
)
def _grade_cross_sectional_ic(answer: Callable[[dict, np.ndarray], pd.DataFrame]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function ic_table(forecasts, outcome), got {type(answer).__name__}")
    forecasts, outcome = _ic_market()
    want = _expected_ic_table(forecasts, outcome)
    got = answer({k: v.copy() for k, v in forecasts.items()}, outcome.copy())
    if not isinstance(got, pd.DataFrame):
        return Feedback(False, f"return a DataFrame (one row per forecast), got {type(got).__name__}")
    missing = [c for c in _IC_COLUMNS if c not in got.columns]
    if missing or list(got.index) != list(want.index):
        return Feedback(False, f"the table needs the rows {list(want.index)} (the forecasts' names, in order) and "
                               f"the columns {list(_IC_COLUMNS)}; got rows {list(got.index)}, columns "
                               f"{list(got.columns)}.")
    for name, f in forecasts.items():
        for column in _IC_COLUMNS:
            value, expected = float(got.loc[name, column]), float(want.loc[name, column])
            if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
                continue
            where = f"forecast '{name}', {column}: you have {value:.4f}, the answer is {expected:.4f}"
            if column == "pooled IC":
                return Feedback(False, f"{where} — the Pearson correlation of all (bar, asset) pairs, "
                                       "np.corrcoef(f.ravel(), outcome.ravel())[0, 1].")
            why = next((text for key, text in _XS_WHY.items()
                        if math.isclose(value, _xs_mistakes(f, outcome)[key], rel_tol=1e-6, abs_tol=1e-9)), "")
            if not why and not math.isfinite(value):
                why = "A NaN: some bars have no correlation (the same forecast for every asset); drop them."
            return Feedback(False, f"{where}. {why}".rstrip())
    timing, picker = want.loc["market timing"], want.loc["asset picker (coarse)"]
    return Feedback(True, f"the market-timing forecast has a pooled IC of {timing['pooled IC']:.2f} but a "
                          f"cross-sectional rank IC of {timing['cross-sectional rank IC']:.2f}; the asset picker "
                          f"{picker['pooled IC']:.2f} and {picker['cross-sectional rank IC']:.2f}. Which layout "
                          "'wins' depends on which question you ask: when assets move together, the pooled IC "
                          "rewards timing the market, the cross-sectional one ranking the assets.")


# --------------------------------------------------------------------- memory budget

_BENCH = {"batch": 2, "n_heads": 2, "n_layers": 2}  # benchmarks/cross_asset.py's settings
_BUDGET_CASES = ((100, 12), (8, 12), (5, 12), (16, 24), (100, 1))


def _expected_max_lookback(n_assets: int, budget_gib: float = 12, *, tokens: Callable[[int, int], int] | None = None,
                  gib: float = 2**30, sizes: dict[str, int] | None = None) -> int:
    """Largest multiple of 64 whose naive step fits; the keyword variants build the typical mistakes."""
    from flashtrade_lib.model.cross_asset import n_tokens
    from flashtrade_lib.model.step_cost import naive_step_bytes

    tokens, sizes = tokens or n_tokens, _BENCH if sizes is None else sizes
    lookback = 0
    while naive_step_bytes(tokens(lookback + 64, n_assets), **sizes) <= budget_gib * gib:
        lookback += 64
    return lookback


def _max_lookback_without_summary(n_assets: int, budget_gib: float = 12) -> int:
    return _expected_max_lookback(n_assets, budget_gib, tokens=lambda lookback, assets: lookback * assets)


@register(
    "ch10-budget",
    title="The longest lookback whose naive training step fits a memory budget",
)
def _grade_budget(answer: Callable[[int, float], int]) -> Feedback:
    from flashtrade_lib.model.cross_asset import n_tokens
    from flashtrade_lib.model.step_cost import naive_step_bytes

    if not callable(answer):
        return Feedback(False, f"expected a function max_lookback(n_assets, budget_gib), got {type(answer).__name__}")
    for assets, budget in _BUDGET_CASES:
        got, want = answer(assets, budget), _expected_max_lookback(assets, budget)
        if got == want:
            continue
        mistakes = {
            _max_lookback_without_summary(assets, budget): "You counted lookback × n_assets tokens; every bar also "
            "has a summary token, so the sequence is n_tokens(lookback, n_assets) = lookback × (n_assets + 1).",
            _expected_max_lookback(assets, budget, gib=1e9): "A GiB is 2**30 bytes, not 10**9.",
            _expected_max_lookback(assets, budget, sizes={}): "Use the benchmark's settings, batch=2, n_heads=2, "
            "n_layers=2, not naive_step_bytes' defaults.",
            want + 64: "That lookback is the first one that no longer fits; return the last one that does.",
        }
        if got in mistakes:
            hint = mistakes[got]
        elif isinstance(got, (int, float)) and got % 64:
            hint = "Lookbacks are multiples of 64 here (0 when even 64 bars do not fit)."
        else:
            need = naive_step_bytes(n_tokens(want + 64, assets), **_BENCH) / 2**30
            hint = (f"{want + 64} bars would be {n_tokens(want + 64, assets):,} tokens and need "
                    f"{need:.1f} GiB (naive_step_bytes with batch=2, n_heads=2, n_layers=2).")
        return Feedback(False, f"for {assets} assets and {budget} GiB the answer is {want}, you said {got}. {hint}")
    return Feedback(True, "right. With 100 assets a 12 GiB budget allows only 64 bars of naive attention "
                          "(6,464 tokens); 128 bars would need 12.5 GiB. Memory O(N²) in tokens is "
                          "what the flash backends remove.")


# --------------------------------------------------------------------- no summary token


@register(
    "ch10-summary",
    title="Read each asset's prediction from its own token only (no summary token)",
)
def _grade_summary(answer: type) -> Feedback:
    import torch

    from flashtrade_lib.model.cross_asset import CrossAssetTrader
    from flashtrade_lib.model.trader import HEADS, ModelConfig

    if not (isinstance(answer, type) and issubclass(answer, CrossAssetTrader)):
        what = answer.__name__ if isinstance(answer, type) else f"an instance of {type(answer).__name__}"
        return Feedback(False, f"expected a subclass of CrossAssetTrader (the class itself), got {what}")
    n_assets = 4
    torch.manual_seed(0)
    model = answer(ModelConfig(n_features=3, d_model=16, n_heads=2, n_layers=2, backend="naive"), n_assets).eval()
    for head in model.heads.values():  # the default zero biases and tiny weights would hide differences
        torch.nn.init.normal_(head.weight, std=1.0)
        torch.nn.init.normal_(head.bias, std=1.0)
    x = torch.randn(2, 5, n_assets, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
        if not isinstance(out, dict) or set(out) != set(HEADS):
            return Feedback(False, f"forward must return a dict with keys {list(HEADS)}, like CrossAssetTrader's")
        if any(tuple(v.shape) != (2, n_assets) for v in out.values()):
            shapes = {k: tuple(v.shape) for k, v in out.items()}
            return Feedback(False, f"every output must be (batch, n_assets) = (2, {n_assets}); got {shapes}. "
                                   "Take the first n_assets tokens of the last bar, encode(x)[:, -1, :n_assets], "
                                   "and squeeze the heads' last axis.")
        # which assets' predictions move when only asset b's last bar changes
        moved = torch.zeros(n_assets, n_assets, dtype=torch.bool)
        for b in range(n_assets):
            y = x.clone()
            y[:, -1, b] += 1.0
            moved[:, b] = (model(y)["regression"] - out["regression"]).abs().amax(0) > 1e-6
    want = torch.ones(n_assets, n_assets, dtype=torch.bool).tril()  # [a, b]: asset a sees asset b's last bar
    if moved.all():
        return Feedback(False, "every asset's prediction still moves when any other asset's last bar changes: "
                               "the read-out still uses the summary token. Read asset a from its own token, "
                               "encode(x)[:, -1, :n_assets], without adding the summary.")
    if not torch.equal(moved, want):
        return Feedback(False, f"which last bars move which predictions (row a, column b): "
                               f"{moved.int().tolist()}; reading each asset from its own last token gives "
                               f"{want.int().tolist()} (a token sees its own bar's tokens up to itself).")
    return Feedback(True, "right. Without the summary token asset a sees the last bar of assets 0..a only: "
                          "asset 0 sees no other asset's latest bar, asset 3 sees all four. The time-major "
                          "order makes the model asymmetric; the summary token, which sees the whole bar, "
                          "restores the symmetry.")


# --------------------------------------------------------------------- the bar-causal mask


@register(
    "ch10-bar-mask",
    title="The strictly bar-causal mask over time-major (asset, time) tokens",
    hints=(
        "Give every token its bar first: in the time-major layout bar t holds tokens "
        "t·(A+1) … t·(A+1) + A (the A assets, then the summary token).",
        "Query token i may attend key token j exactly when bar(j) <= bar(i) — its own bar "
        "included, since every asset's bar closes at the same time.",
        "Rows are queries and columns keys, as in every mask of the book (True = may attend); "
        "compare two bar-index vectors with broadcasting.",
    ),
)
def _grade_bar_mask(answer: Callable[[int, int], np.ndarray]) -> Feedback:
    from flashtrade_lib.model.cross_asset import n_tokens

    if not callable(answer):
        return Feedback(False, f"expected a function bar_causal_mask(lookback, n_assets), got {type(answer).__name__}")
    for lookback, assets in ((1, 1), (3, 2), (4, 5), (7, 3)):
        n = n_tokens(lookback, assets)
        bar = np.arange(n) // (assets + 1)  # time-major: assets 0..A-1, then the summary token
        want = bar[None, :] <= bar[:, None]
        got = np.asarray(answer(lookback, assets))
        where = f"for lookback={lookback}, n_assets={assets}"
        if got.shape != want.shape:
            return Feedback(False, f"{where} the mask must be (tokens, tokens) = {want.shape}; got {got.shape}.")
        if got.dtype != np.bool_:
            return Feedback(False, f"{where} return a boolean mask (True = may attend), got dtype {got.dtype}.")
        if np.array_equal(got, want):
            continue
        if np.array_equal(got, np.tril(np.ones_like(want))):
            why = ("that is plain causal attention (key j <= query i): inside a bar a token would not see "
                   "the assets ordered after it — the asymmetry the summary token works around.")
        elif np.array_equal(got, bar[None, :] < bar[:, None]):
            why = "a token must also see its own bar (every asset's bar closes at the same timestamp)."
        elif np.array_equal(got, want.T):
            why = "rows are queries and columns keys: your mask lets a token see later bars."
        else:
            why = f"{int((got != want).sum())} of {want.size} entries differ."
        return Feedback(False, f"{where}: {why}")
    return Feedback(True, "no look-ahead and no asymmetry — but an arbitrary mask is what the fused kernels "
                          "do not take, hence the time-major layout with causal=True and a summary token.")
