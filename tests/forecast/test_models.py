"""Forecasters: shapes and jit on stacked cells with dropout, the recursion's
arithmetic and its sample paths against an exactly linear AR(2) network, and the
recursive/direct agreement at horizon 1."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.cells import ElmanParams
from jaxseq.forecast import (
    Scaling,
    Windows,
    forecaster,
    gaussian,
    predict,
    quantile,
    student_t,
)
from jaxseq.forecast.heads import MIN_SIGMA

B, W, H, C = 3, 6, 4, 2


def _batch(seed=0, horizon=H):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(B, W + horizon)).astype(np.float32)
    cov = rng.normal(size=(B, W + horizon - 1, C)).astype(np.float32)
    return z, cov


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy, head, layers",
    [
        ("recursive", gaussian(), 2),
        ("direct", quantile(), 1),
        ("seq2seq", gaussian(), 1),
        ("recursive", student_t(), 1),
    ],
)
def test_strategies_on_stacked_cells_with_dropout(strategy, head, layers):
    model = forecaster(
        jaxseq.cells.lstm(5),
        window=W,
        horizon=H,
        strategy=strategy,
        head=head,
        num_covariates=C,
        num_layers=layers,
        dropout=0.3,
    )
    params = model.init(jax.random.key(0))
    z, cov = _batch()
    loss_and_grad = jax.jit(
        jax.value_and_grad(lambda p, k: model.loss(p, (z, cov), k)[0])
    )
    loss, grads = loss_and_grad(params, jax.random.key(1))
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    o = model.outputs(params, z[:, :W], cov)
    assert o.shape == (B, H, head.size)
    if head.sample is not None:
        paths = model.paths(params, z[:, :W], cov, jax.random.key(2), num_samples=7)
        assert paths.shape == (B, 7, H)
    else:
        assert model.paths is None


@pytest.mark.slow
def test_recursive_and_direct_agree_at_horizon_one():
    """Same parameters: the recursive forecaster's first step is the direct
    one-step forecaster's output (both read out h_{W-1})."""
    layer = jaxseq.stack(jaxseq.cells.gru(6), num_layers=2)
    rec = forecaster(layer, window=W, horizon=H, num_covariates=C)
    direct = forecaster(layer, window=W, horizon=1, strategy="direct", num_covariates=C)
    params = rec.init(jax.random.key(3))
    z, cov = _batch(1)
    np.testing.assert_allclose(
        rec.outputs(params, z[:, :W], cov)[:, 0],
        direct.outputs(params, z[:, :W], cov[:, :W])[:, 0],
        rtol=1e-5,
        atol=1e-6,
    )


PHI, SIGMA = (0.5, 0.3), 0.7


def _linear_ar2(horizon):
    """A recursive forecaster that *is* AR(2): an identity Elman cell whose state
    holds (z_t, z_{t-1}), read out to mu = phi1 z_t + phi2 z_{t-1}, sigma fixed."""
    model = forecaster(
        jaxseq.cells.elman(2, activation="identity"), window=W, horizon=horizon
    )
    raw = np.log(np.expm1(SIGMA - MIN_SIGMA))
    params = {
        "rnn": (
            ElmanParams(
                w_x=jnp.array([[1.0, 0.0]]),
                w_h=jnp.array([[0.0, 1.0], [0.0, 0.0]]),
                b=jnp.zeros(2),
            ),
        ),
        "out": {
            "w": jnp.array([[PHI[0], 0.0], [PHI[1], 0.0]]),
            "b": jnp.array([0.0, raw]),
        },
    }
    return model, params


def test_recursion_is_the_ar2_recursion():
    model, params = _linear_ar2(H)
    z, cov = _batch(2)
    o = np.asarray(model.outputs(params, z[:, :W], cov[..., :0]))
    hist = [list(row[:W].astype(np.float64)) for row in z]
    for h in range(H):
        for b in range(B):
            mu = PHI[0] * hist[b][-1] + PHI[1] * hist[b][-2]
            assert o[b, h, 0] == pytest.approx(mu, abs=1e-5)
            hist[b].append(mu)
    sigma = np.log1p(np.exp(o[..., 1])) + MIN_SIGMA
    np.testing.assert_allclose(sigma, SIGMA, rtol=1e-5)


def test_sample_paths_have_the_ar2_marginal_spread():
    """h-step predictive of AR(2): mean from the recursion, variance
    sigma^2 * sum_{j<h} psi_j^2 with psi_0 = 1, psi_1 = phi1,
    psi_j = phi1 psi_{j-1} + phi2 psi_{j-2}; checked in original units through
    ``predict`` (scale 3, loc 10) at 5 Monte Carlo standard errors."""
    model, params = _linear_ar2(H)
    z, cov = _batch(3)
    scaling = Scaling(np.array([10.0]), np.array([3.0]))
    windows = Windows(
        z[:, :W],
        cov[..., :0],
        np.zeros(B, np.float32),
        np.zeros(B, np.int32),
        np.full(B, W, np.int32),
    )
    S = 4000
    fc = predict(model, params, windows, scaling, key=jax.random.key(4), num_samples=S)
    psi = [1.0, PHI[0]]
    while len(psi) < H:
        psi.append(PHI[0] * psi[-1] + PHI[1] * psi[-2])
    sd = 3.0 * SIGMA * np.sqrt(np.cumsum(np.square(psi[:H])))
    paths = fc.paths
    assert paths.shape == (B, S, H)
    mean_err = np.abs(paths.mean(1) - fc.mean) / (sd / np.sqrt(S))
    assert mean_err.max() < 5
    ratio = paths.std(1) / sd
    assert np.abs(ratio - 1).max() < 5 / np.sqrt(2 * S)
    # intervals: exact at step 1, from path quantiles later
    from scipy import stats

    lo_ref = stats.norm.ppf(0.05, fc.mean, sd)
    np.testing.assert_allclose(fc.lower[0.9][:, 0], lo_ref[:, 0], rtol=1e-5)
    np.testing.assert_allclose(fc.lower[0.9][:, 1:], lo_ref[:, 1:], atol=0.1 * sd.max())


@pytest.mark.slow
def test_direct_paths_draw_each_steps_marginal():
    model = forecaster(jaxseq.cells.gru(4), window=W, horizon=H, strategy="direct")
    params = model.init(jax.random.key(5))
    z, cov = _batch(4)
    o = model.outputs(params, z[:, :W], cov[..., :0])
    paths = np.asarray(
        model.paths(params, z[:, :W], cov[..., :0], jax.random.key(6), num_samples=4000)
    )
    sigma = np.log1p(np.exp(np.asarray(o[..., 1], np.float64))) + MIN_SIGMA
    assert np.abs(paths.std(1) / sigma - 1).max() < 5 / np.sqrt(8000)


def test_errors():
    cell = jaxseq.cells.lstm(3)
    with pytest.raises(
        ValueError,
        match=r"head: a recursive forecast over horizon 4 needs a head that can sample .* got 'quantile'",
    ):
        forecaster(cell, window=W, horizon=4, head=quantile())
    bi = jaxseq.stack(cell, bidirectional=True)
    with pytest.raises(ValueError, match="the seq2seq strategy runs forwards in time"):
        forecaster(bi, window=W, horizon=2, strategy="seq2seq")
    forecaster(bi, window=W, horizon=2, strategy="direct")  # a direct encoder may
    with pytest.raises(
        ValueError, match=r"strategy: expected one of .* got 'sideways'"
    ):
        forecaster(cell, window=W, horizon=2, strategy="sideways")
    with pytest.raises(TypeError, match="cell: expected a jaxseq Cell or an RNNLayer"):
        forecaster("lstm", window=W, horizon=2)
    with pytest.raises(ValueError, match="horizon: expected a positive int, got 0"):
        forecaster(cell, window=W, horizon=0)
    model, params = _linear_ar2(3)
    z, cov = _batch(0, 3)
    windows = Windows(
        z[:, :W],
        cov[..., :0],
        np.zeros(B, np.float32),
        np.zeros(B, np.int32),
        np.full(B, W, np.int32),
    )
    with pytest.raises(ValueError, match="key: expected a PRNG key"):
        predict(model, params, windows, Scaling(np.zeros(1), np.ones(1)))
