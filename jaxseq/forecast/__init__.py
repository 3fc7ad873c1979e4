"""Forecasting time series with jaxseq's recurrent nets, held against classical
methods (issue 17).

* Data: :func:`as_collection`, :func:`read_csv` (validated series, CSV with
  file:line errors; missing values refused, or masked with ``missing=True``);
  per-series :func:`fit_scaling` on the training part only;
  :func:`training_windows` / :func:`history_windows` from one or many series,
  with optional calendar covariates (:func:`seasonal`).
* Models: :func:`forecaster` on any jaxseq cell or stacked layer, strategies
  ``"recursive"``, ``"direct"`` and ``"seq2seq"``; heads :func:`gaussian`,
  :func:`student_t` and :func:`quantile`; :func:`train` (through
  :func:`jaxseq.train.fit`) and :func:`predict` (point forecasts, 80/90%
  intervals, sample paths).
* Evaluation: :func:`evaluate` over rolling origins with the metrics of
  :mod:`jaxseq.forecast.metrics`; methods :func:`naive`, :func:`seasonal_naive`,
  :func:`auto_arima`, :func:`auto_ets` (statsforecast, optional),
  :func:`bayes_nar` and :func:`recurrent` (target transform per series,
  :data:`LEVEL` or :data:`DIFF`, chosen on held-out training windows;
  intervals calibrated per horizon step by conformal prediction on the same
  windows and, at each later origin, the realised errors of the earlier
  forecasts (rolling conformal with adaptive conformal inference):
  :func:`conformal_factors`, :func:`conformal_scores`, :func:`online_factors`,
  :func:`stretch`, :func:`recentre`, :func:`score_factors`,
  :func:`step_scales`; the transforms' nets
  combined by :func:`combine` by default; optional classical candidates,
  ``RecurrentConfig(classical=("ar",))``: a direct linear AR per series,
  :mod:`jaxseq.forecast.classical`, weighed with the nets on the same held-out
  windows, alone where it ties the best net); :func:`plot_forecast`.
* Command line: ``jaxseq forecast --data series.csv --horizon 12 --model lstm``.
"""

from . import metrics
from .baselines import (
    Method,
    auto_arima,
    auto_ets,
    bayes_nar,
    naive,
    seasonal_naive,
    stack_forecasts,
)
from .conformal import (
    conformal_factors,
    conformal_scores,
    online_factors,
    recentre,
    score_factors,
    step_scales,
    stretch,
)
from .data import Table, as_collection, check_series, read_csv
from .ensemble import COMBINE, combine
from .evaluate import evaluate, rolling_origins
from .heads import Head, gaussian, quantile, student_t
from .models import STRATEGIES, Forecaster, forecaster, member, stacked
from .plots import plot_forecast
from .predict import Forecast, predict, train
from .recurrent import CELLS, RecurrentConfig, RecurrentState, recurrent
from .scaling import Scaling, fit_scaling
from .transforms import DIFF, LEVEL, TRANSFORMS, Transform
from .windows import (
    Windows,
    history_windows,
    seasonal,
    series_onehot,
    training_windows,
)

__all__ = [
    "CELLS",
    "COMBINE",
    "DIFF",
    "LEVEL",
    "STRATEGIES",
    "TRANSFORMS",
    "Transform",
    "Forecast",
    "Forecaster",
    "Head",
    "Method",
    "RecurrentConfig",
    "RecurrentState",
    "Scaling",
    "Table",
    "Windows",
    "as_collection",
    "auto_arima",
    "auto_ets",
    "bayes_nar",
    "check_series",
    "combine",
    "conformal_factors",
    "conformal_scores",
    "evaluate",
    "fit_scaling",
    "forecaster",
    "gaussian",
    "history_windows",
    "member",
    "metrics",
    "naive",
    "online_factors",
    "plot_forecast",
    "predict",
    "quantile",
    "read_csv",
    "recentre",
    "score_factors",
    "step_scales",
    "recurrent",
    "rolling_origins",
    "seasonal",
    "seasonal_naive",
    "series_onehot",
    "stack_forecasts",
    "stacked",
    "stretch",
    "student_t",
    "train",
    "training_windows",
]
