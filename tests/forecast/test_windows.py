"""Windows and scaling against NumPy references; no leak of held-out values."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.forecast import (
    RecurrentConfig,
    fit_scaling,
    history_windows,
    recurrent,
    seasonal,
    series_onehot,
    training_windows,
)


@pytest.fixture
def series():
    rng = np.random.default_rng(3)
    return [rng.normal(5.0, 2.0, size=40), rng.normal(-1.0, 0.5, size=31)]


def test_scaling_uses_the_training_part_only(series):
    scaling = fit_scaling(series, [30, 25])
    for i, end in enumerate([30, 25]):
        assert scaling.loc[i] == pytest.approx(series[i][:end].mean())
        assert scaling.scale[i] == pytest.approx(series[i][:end].std())
        z = scaling.forward(i, series[i])
        np.testing.assert_allclose(scaling.inverse(i, z), series[i])


def test_no_leak_of_held_out_values(series):
    """Changing every value after the training end changes neither the scaling
    nor any training window (a scaler or cutter reading them would fail)."""
    ends = [30, 25]
    cut = dict(window=6, horizon=3, end=ends, relative=True)
    before = fit_scaling(series, ends)
    w_before = training_windows(series, before, **cut)
    leaked = [y.copy() for y in series]
    for y, end in zip(leaked, ends, strict=True):
        y[end:] = 1e6
    after = fit_scaling(leaked, ends)
    w_after = training_windows(leaked, after, **cut)
    np.testing.assert_array_equal(before.loc, after.loc)
    np.testing.assert_array_equal(before.scale, after.scale)
    for a, b in zip(w_before, w_after, strict=True):
        np.testing.assert_array_equal(a, b)
    # the last window's targets end exactly at the training end
    last = w_before.origin[w_before.series == 0].max()
    assert last + 3 == ends[0]


def _reference(y, loc, scale, window, horizon, end, stride, relative):
    rows = []
    origins = list(range(window, end - horizon + 1))[::-1][::stride][::-1]
    for t in origins:
        z = (y[t - window : t + horizon] - loc) / scale
        rows.append(z - (z[window - 1] if relative else 0.0))
    return np.array(rows), origins


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("stride", [1, 4])
def test_training_windows_match_numpy(series, relative, stride):
    scaling = fit_scaling(series, 28)
    w = training_windows(
        series,
        scaling,
        window=5,
        horizon=2,
        end=28,
        stride=stride,
        relative=relative,
        covariates=seasonal(7.0),
    )
    for i, y in enumerate(series):
        ref, origins = _reference(
            y, y[:28].mean(), y[:28].std(), 5, 2, 28, stride, relative
        )
        sel = w.series == i
        np.testing.assert_allclose(w.z[sel], ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(w.origin[sel], origins)
        # cov[n, k] belongs to the time of z[n, k + 1], i.e. t - W + 1 + k
        times = np.array(origins)[:, None] - 5 + 1 + np.arange(6)
        np.testing.assert_allclose(
            w.cov[sel][..., 0], np.sin(2 * np.pi * times / 7), atol=1e-6
        )
        np.testing.assert_allclose(
            w.cov[sel][..., 1], np.cos(2 * np.pi * times / 7), atol=1e-6
        )


def test_history_windows_read_only_the_past(series):
    scaling = fit_scaling(series, 20)
    w = history_windows(series, scaling, [(0, 20), (1, 31)], window=4, horizon=3)
    np.testing.assert_allclose(w.z[0], scaling.forward(0, series[0][16:20]), rtol=1e-6)
    np.testing.assert_allclose(w.z[1], scaling.forward(1, series[1][27:31]), rtol=1e-6)
    assert w.z.shape == (2, 4) and w.cov.shape == (2, 6, 0)
    changed = [series[0].copy(), series[1]]
    changed[0][20:] = -1e6
    w2 = history_windows(changed, scaling, [(0, 20)], window=4, horizon=3)
    np.testing.assert_array_equal(w.z[0], w2.z[0])


def test_covariate_arrays_must_cover_the_forecast(series):
    scaling = fit_scaling(series)
    covs = [np.ones((40, 1)), np.ones((31, 1))]
    with pytest.raises(
        ValueError, match=r"covariates\[1\]: expected finite rows up to index 33"
    ):
        history_windows(
            series, scaling, [(1, 31)], window=4, horizon=3, covariates=covs
        )


def test_errors(series):
    scaling = fit_scaling(series)
    with pytest.raises(
        ValueError,
        match=r"series\[1\]: expected at least window \+ horizon = 30 \+ 5 = 35 values .* got 31",
    ):
        training_windows(series, scaling, window=30, horizon=5)
    with pytest.raises(ValueError, match="horizon: expected a positive int, got 0"):
        training_windows(series, scaling, window=3, horizon=0)
    with pytest.raises(ValueError, match="horizon: expected a positive int, got -2"):
        history_windows(series, scaling, [(0, 10)], window=3, horizon=-2)
    with pytest.raises(TypeError, match="window: expected a positive int, got 2.5"):
        training_windows(series, scaling, window=2.5, horizon=1)
    with pytest.raises(
        ValueError,
        match=r"origins: expected an origin in \[window, len\(series\[0\]\)\] = \[5, 40\], got 3",
    ):
        history_windows(series, scaling, [(0, 3)], window=5, horizon=1)
    with pytest.raises(
        ValueError,
        match=r"series\[0\]: expected values that vary .* constant series \(= 2\)",
    ):
        fit_scaling([np.full(10, 2.0)])
    with pytest.raises(ValueError, match=r"series\[1\]: expected values that vary"):
        fit_scaling([np.arange(10.0), np.r_[np.full(5, 3.0), np.arange(5.0)]], 5)
    with pytest.raises(
        ValueError,
        match=r"train_end: expected an int in \[1, 31\] for series 1, got 35",
    ):
        fit_scaling(series, 35)


def test_series_onehot_columns(series):
    """Calendar columns first, then the one-hot of the window's series (NumPy
    reference); ``index`` maps the series passed to the ones of the model."""
    scaling = fit_scaling(series, [30, 25])
    cal = seasonal(4)
    w = training_windows(
        series, scaling, window=5, horizon=2, covariates=series_onehot(3, cal)
    )
    assert w.cov.shape == (w.z.shape[0], 6, 2 + 3)
    for n in (0, w.z.shape[0] - 1):
        t = np.arange(w.origin[n] - 4, w.origin[n] + 2)
        angle = 2 * np.pi * t / 4
        expected = np.zeros((6, 5))
        expected[:, 0], expected[:, 1] = np.sin(angle), np.cos(angle)
        expected[:, 2 + w.series[n]] = 1.0
        np.testing.assert_allclose(w.cov[n], expected, atol=1e-6)
    # forecasting series 1 alone: it is passed as the 0th, its one-hot is 1
    h = history_windows(
        [series[1]],
        fit_scaling([series[1]], 25),
        [(0, 25)],
        window=5,
        horizon=2,
        covariates=series_onehot(3, index=[1]),
    )
    np.testing.assert_array_equal(h.cov[0], np.tile([0.0, 1.0, 0.0], (6, 1)))


def test_series_input_forecasts_do_not_depend_on_the_request_order(series):
    """With ``series_input``, each forecast row reads its own series' one-hot
    whatever the order (or subset) of the requests (were the one-hot taken
    from the request's position, the swapped rows would read each other's:
    the net's initial weights on it are not 0)."""
    method = recurrent(
        RecurrentConfig(
            cell="gru",
            hidden=4,
            window=6,
            steps=10,
            transform="level",
            holdout=0,
            series_input=True,
        ),
        2,
    )
    state = method.fit([y[:25] for y in series])
    a, b = series[0][:28], series[1][:27]
    both = method.forecast(state, [(0, a), (1, b)], 2)
    swapped = method.forecast(state, [(1, b), (0, a)], 2)
    alone = method.forecast(state, [(1, b)], 2)
    np.testing.assert_allclose(both.mean[::-1], swapped.mean, rtol=1e-6)
    np.testing.assert_allclose(both.mean[1], alone.mean[0], rtol=1e-6)
    with pytest.raises(TypeError, match=r"series_input: expected True or False"):
        recurrent(RecurrentConfig(series_input=1), 2)
