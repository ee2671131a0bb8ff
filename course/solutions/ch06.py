"""Chapter 6 (06_training) — instructor's solutions (not installed with flashtrade_lib)."""

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong
from flashtrade_lib.trading import stats
from flashtrade_lib.trading.baselines import ridge_fit, ridge_predict


@solution("ch06-same-information")
def same_information_test(train_windows, train_y, test_windows, test_y, model_forecast, alpha=1.0):
    flat_train = train_windows.reshape(len(train_windows), -1)  # every bar of the window: what the model reads
    flat_test = test_windows.reshape(len(test_windows), -1)
    baseline = ridge_predict(ridge_fit(flat_train, train_y, alpha=alpha), flat_test).ravel()
    loss_model, loss_baseline = (test_y - model_forecast) ** 2, (test_y - baseline) ** 2
    test = stats.paired_difference_test(loss_model, loss_baseline, "mean", names=("model", "baseline"))
    return baseline, float(np.mean(loss_model - loss_baseline)), test.p_value


@wrong("ch06-same-information", expect="reads the last bar only")
def same_information_test_last_bar(train_windows, train_y, test_windows, test_y, model_forecast, alpha=1.0):
    baseline = ridge_predict(ridge_fit(train_windows[:, -1], train_y, alpha=alpha), test_windows[:, -1]).ravel()
    loss_model, loss_baseline = (test_y - model_forecast) ** 2, (test_y - baseline) ** 2
    test = stats.paired_difference_test(loss_model, loss_baseline, "mean", names=("model", "baseline"))
    return baseline, float(np.mean(loss_model - loss_baseline)), test.p_value


@wrong("ch06-same-information", expect="That is an unpaired test")
def same_information_test_unpaired(train_windows, train_y, test_windows, test_y, model_forecast, alpha=1.0):
    from scipy.stats import ttest_ind

    flat_train = train_windows.reshape(len(train_windows), -1)
    flat_test = test_windows.reshape(len(test_windows), -1)
    baseline = ridge_predict(ridge_fit(flat_train, train_y, alpha=alpha), flat_test).ravel()
    loss_model, loss_baseline = (test_y - model_forecast) ** 2, (test_y - baseline) ** 2
    p = ttest_ind(loss_model, loss_baseline, equal_var=False).pvalue  # two independent samples
    return baseline, float(np.mean(loss_model - loss_baseline)), float(p)
