"""Missing values: refused by default (naming index or file:line), masked with
``missing=True``: kept as NaN, left out of the scaling, the loss and the
metrics; a missing input reads as 0."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.forecast import (
    as_collection,
    check_series,
    fit_scaling,
    forecaster,
    gaussian,
    history_windows,
    metrics,
    naive,
    read_csv,
    training_windows,
)
from jaxseq.forecast.baselines import _filled


def test_refused_by_default_masked_on_request(tmp_path):
    y = np.array([1.0, 2.0, np.nan, 4.0, 3.0])
    with pytest.raises(
        ValueError, match=r"pass missing=True to mask them\), got y\[2\] = nan"
    ):
        check_series(y, "y")
    kept = check_series(y, "y", missing=True)
    assert np.isnan(kept[2]) and np.isfinite(np.delete(kept, 2)).all()
    with pytest.raises(
        ValueError, match=r"y: expected finite values, got y\[1\] = inf"
    ):
        check_series([1.0, np.inf], "y", missing=True)
    with pytest.raises(ValueError, match="y: expected observed values, got only"):
        check_series([np.nan, np.nan], "y", missing=True)
    assert np.isnan(as_collection([[1.0, np.nan, 2.0]], missing=True)[0][1])
    path = tmp_path / "s.csv"
    path.write_text("t,a,b\n1,2,5\n2,,6\n3,NA,nan\n4,3,7\n")
    with pytest.raises(ValueError, match=r"s.csv:3: column 'a': .*--missing mask.*''"):
        read_csv(path, time="t")
    table = read_csv(path, time="t", missing=True)
    np.testing.assert_array_equal(
        table.values, [[2, np.nan, np.nan, 3], [5, 6, np.nan, 7]]
    )
    path.write_text("t,a\n1,2\n,3\n")
    with pytest.raises(
        ValueError, match=r"s.csv:3: column 't': expected a time stamp .*, got ''"
    ):
        read_csv(path, time="t", missing=True)


def test_scaling_windows_and_metrics_use_the_observed_values():
    rng = np.random.default_rng(0)
    y = rng.normal(size=40) + 5
    y[[3, 17, 18]] = np.nan
    scaling = fit_scaling([y], 30)
    part = y[:30][~np.isnan(y[:30])]
    np.testing.assert_allclose(
        [scaling.loc[0], scaling.scale[0]], [part.mean(), part.std()]
    )
    w = training_windows([y], scaling, window=6, horizon=2, end=30, relative=True)
    # a window's offset is its last observed value: the window [13, 19) ends in
    # two missing values, so its offset is the value at 16
    n = int(np.flatnonzero(w.origin == 19)[0])
    np.testing.assert_allclose(w.offset[n], scaling.forward(0, y[16]), rtol=1e-6)
    assert np.isnan(w.z[n, 4:6]).all() and np.isfinite(w.z[n, :4]).all()
    with pytest.raises(
        ValueError, match=r"origins: expected an observed value .* origin 3"
    ):
        gap = y.copy()
        gap[:3] = np.nan
        history_windows([gap], scaling, [(0, 3)], window=3, horizon=1)
    truth = np.array([[1.0, np.nan, 3.0]])
    f = np.array([[2.0, 100.0, 3.0]])
    assert metrics.mase(truth, f, 2.0) == 0.25
    assert metrics.rmse(truth, f) == pytest.approx(np.sqrt(0.5))
    assert metrics.coverage(truth, f - 0.5, f + 0.5) == 0.5
    assert metrics.mase_scale([1.0, np.nan, 2.0, 4.0]) == 2.0


def test_loss_leaves_missing_targets_out():
    model = forecaster(
        jaxseq.cells.gru(3), window=4, horizon=3, strategy="direct", head=gaussian()
    )
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 7)).astype(np.float32)
    cov = np.zeros((5, 6, 0), np.float32)
    gappy = z.copy()
    gappy[1, 5] = gappy[3, 4] = np.nan  # targets
    o = model.outputs(params, z[:, :4], cov)
    per = np.asarray(model.head.loss(o, z[:, 4:]))
    seen = ~np.isnan(gappy[:, 4:])
    loss, aux = model.loss(params, (jnp.asarray(gappy), cov), None)
    np.testing.assert_allclose(loss, per[seen].mean(), rtol=1e-5)
    grads = jax.grad(lambda p: model.loss(p, (jnp.asarray(gappy), cov), None)[0])(
        params
    )
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    # a missing input reads as 0
    gappy[2, 1] = np.nan
    zero = gappy.copy()
    zero[2, 1] = 0.0
    np.testing.assert_array_equal(
        model.outputs(params, gappy[:, :4], cov),
        model.outputs(params, zero[:, :4], cov),
    )


def test_naive_carries_the_last_observed_value():
    np.testing.assert_array_equal(
        _filled(np.array([np.nan, 2.0, np.nan, 4.0, np.nan])), [2, 2, 2, 4, 4]
    )
    method = naive()
    state = method.fit([np.array([1.0, 2.0, np.nan, 4.0])])
    out = method.forecast(state, [(0, np.array([1.0, 3.0, np.nan]))], 2)
    np.testing.assert_array_equal(out.mean, [[3.0, 3.0]])
    assert np.isfinite(out.lower[0.9]).all()
