"""Chapter 5 (05_market_data) — instructor's solutions (not installed with flashtrade_lib)."""

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong
from flashtrade_lib.data.splits import purged_splits


@solution("ch05-causal-feature")
def price_ma_ratio_fixed(close, window=24):
    return close / close.rolling(window).mean()


@wrong("ch05-causal-feature", expect="still looks ahead")
def price_ma_ratio_centred(close, window=24):
    return close / close.rolling(window, center=True).mean()  # the chapter's leaky version


@solution("ch05-lookback-days", call=True)
def days():
    return 2048 * 30 / (60 * 24)  # 42.67 days: bars × minutes per bar / minutes per day


@wrong("ch05-lookback-days", expect="hourly", call=True)
def days_of_hourly_bars():
    return 2048 / 24


@solution("ch05-purged-count", call=True)
def n_purged():
    from flashtrade_lib.data.labels import label_intervals
    iv = np.stack(label_intervals(np.arange(1000), 24), axis=1)
    return 700 - len(purged_splits(iv, fractions=(0.7, 0.0, 0.3), embargo=24).train)


@wrong("ch05-purged-count", expect="forgets the embargo", call=True)
def n_purged_without_embargo():
    return 24
