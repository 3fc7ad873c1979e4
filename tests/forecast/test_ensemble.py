"""Forecast combination against NumPy, the direct forecaster's linear
autoregressive highway (its arithmetic, and its coefficients recovering an
AR(2) process), stacked (vmapped) ensembles against their members run one by
one, and the conformal factor's finite-sample rank."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxseq
from jaxseq.forecast import (
    Forecast,
    RecurrentConfig,
    combine,
    conformal_factors,
    forecaster,
    recurrent,
)
from jaxseq.forecast.candidates import pool_weights as _weights
from jaxseq.forecast.models import member, stacked


def _members(k=3, n=4, h=5, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        m = rng.normal(size=(n, h))
        out.append(
            Forecast(
                m,
                {p: m - rng.uniform(0.1, 2, (n, h)) for p in (0.8, 0.9)},
                {p: m + rng.uniform(0.1, 2, (n, h)) for p in (0.8, 0.9)},
                None,
            )
        )
    return out


@pytest.mark.parametrize("how, agg", [("mean", np.mean), ("median", np.median)])
def test_combine_against_numpy(how, agg):
    members = _members()
    got = combine(members, how)
    means = np.stack([f.mean for f in members])
    point = agg(means, axis=0)
    np.testing.assert_allclose(got.mean, point, rtol=1e-12)
    for p in (0.8, 0.9):
        below = np.stack([f.mean - f.lower[p] for f in members])
        above = np.stack([f.upper[p] - f.mean for f in members])
        np.testing.assert_allclose(got.lower[p], point - agg(below, 0), rtol=1e-12)
        np.testing.assert_allclose(got.upper[p], point + agg(above, 0), rtol=1e-12)
    # one member is itself
    one = combine(members[:1], how)
    np.testing.assert_allclose(one.upper[0.9], members[0].upper[0.9], rtol=1e-12)


def test_weighted_combination_and_pooling_weights():
    """Weights per member and row against NumPy; a member of weight 0 is left
    out even where it is not finite; the pooling rule's weights."""
    members = _members()
    rng = np.random.default_rng(3)
    w = rng.uniform(size=(3, 4))
    w[2, 0] = 0.0
    w /= w.sum(axis=0)
    members[2].mean[0] = np.nan
    got = combine(members, "mean", w)
    for p in (0.8, 0.9):
        for n in range(4):
            point = sum(w[k, n] * members[k].mean[n] for k in range(3) if w[k, n])
            half = sum(
                w[k, n] * (members[k].upper[p][n] - members[k].mean[n])
                for k in range(3)
                if w[k, n]
            )
            np.testing.assert_allclose(got.mean[n], point, rtol=1e-12)
            np.testing.assert_allclose(got.upper[p][n], point + half, rtol=1e-12)
    with pytest.raises(ValueError, match=r"weights: expected 3 non-negative"):
        combine(members, "median", w)
    errors = np.array([[1.0, 1.05], [1.0, 1.5], [2.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(
        _weights("pool", errors, 0.1), [[0.5, 0.5], [1, 0], [0, 1], [0.5, 0.5]]
    )
    np.testing.assert_array_equal(
        _weights("choose", errors[:3], 0.1), [[1, 0], [1, 0], [0, 1]]
    )
    np.testing.assert_array_equal(_weights("mean", errors, 0.1), np.full((4, 2), 0.5))
    # no finite held-out error (every held-out value missing): alike
    nan = np.array([[np.nan, np.nan], [np.nan, 2.0], [np.nan, np.nan]])
    np.testing.assert_array_equal(
        _weights("pool", nan, 0.1), [[0.5, 0.5], [0, 1], [0.5, 0.5]]
    )
    np.testing.assert_array_equal(_weights("choose", nan[:1, :1], 0.1), [[1.0]])


def test_combine_errors():
    members = _members()
    with pytest.raises(ValueError, match=r"how: expected one of \['mean', 'median'\]"):
        combine(members, "max")
    with pytest.raises(ValueError, match=r"forecasts: expected at least one member"):
        combine([], "mean")
    short = members[1]._replace(mean=members[1].mean[:2])
    with pytest.raises(ValueError, match=r"forecasts\[1\]: expected means of shape"):
        combine([members[0], short], "mean")
    with pytest.raises(ValueError, match=r"combine: expected one of"):
        recurrent(RecurrentConfig(combine="vote"), 2)
    with pytest.raises(ValueError, match=r"linear: expected an int in \[0, window\]"):
        recurrent(RecurrentConfig(window=4, linear=5), 2)
    with pytest.raises(ValueError, match=r"linear: the autoregressive highway"):
        recurrent(RecurrentConfig(strategy="recursive", linear=2), 2)
    with pytest.raises(ValueError, match=r"linear: expected an int in \[0, window\]"):
        forecaster(jaxseq.cells.gru(2), window=3, horizon=2, linear=-1)


W, H = 6, 3


@pytest.fixture(scope="module")
def highway():
    return forecaster(
        jaxseq.cells.gru(4), window=W, horizon=H, strategy="direct", linear=3
    )


def test_highway_adds_a_linear_map_of_the_last_inputs(highway):
    """outputs(A) - outputs(A = 0) = z[:, W-3:W] @ A, reshaped [B, H, K];
    a missing input reads as 0 there too."""
    params = highway.init(jax.random.key(0))
    assert params["ar"].shape == (3, H * 2)
    np.testing.assert_array_equal(params["ar"], 0.0)  # starts as the plain net
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, H * 2)).astype(np.float32)
    z = rng.normal(size=(5, W)).astype(np.float32)
    z[0, W - 1] = np.nan
    cov = np.zeros((5, W + H - 1, 0), np.float32)
    base = np.asarray(highway.outputs(params, z, cov))
    with_a = np.asarray(highway.outputs({**params, "ar": jnp.asarray(a)}, z, cov))
    last = np.nan_to_num(z[:, W - 3 :].astype(np.float64))
    expected = (last @ a.astype(np.float64)).reshape(5, H, 2)
    np.testing.assert_allclose(with_a - base, expected, atol=1e-5)


def _ar(phi, n, seed):
    rng = np.random.default_rng(seed)
    y = np.zeros(n + 200)
    for t in range(len(phi), len(y)):
        y[t] = sum(c * y[t - 1 - j] for j, c in enumerate(phi)) + rng.normal()
    return y[200:]


@pytest.mark.parametrize("phi", [(0.7,), (0.6, -0.3)])
def test_highway_recovers_ar_coefficients(phi):
    """With the net's readout weights at 0, the highway alone (and the readout
    biases) trained by the Gaussian likelihood on 3,000 values of an AR(p)
    process: its mean weights match NumPy's least squares within 0.03 and the
    true coefficients within 0.08 (least squares' sd here is about
    sqrt((1 - phi_p^2) / n) < 0.02)."""
    p = len(phi)
    model = forecaster(
        jaxseq.cells.gru(2), window=4, horizon=1, strategy="direct", linear=p
    )
    y = _ar(phi, 3000, seed=len(phi)).astype(np.float32)
    n = len(y) - 4
    z = np.stack([y[t : t + 5] for t in range(n)])
    cov = np.zeros((n, 4, 0), np.float32)
    params = model.init(jax.random.key(0))
    params["out"]["w"] = jnp.zeros_like(params["out"]["w"])
    free = {"ar": params["ar"], "b": params["out"]["b"]}

    def loss(free):
        full = {**params, "ar": free["ar"], "out": {**params["out"], "b": free["b"]}}
        return model.loss(full, (z, cov), None)[0]

    opt = optax.adam(0.05)

    @jax.jit
    def step(free, state):
        grads = jax.grad(loss)(free)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(free, updates), state

    state = opt.init(free)
    for _ in range(400):
        free, state = step(free, state)
    got = np.asarray(free["ar"])[::-1, 0]  # lag 1 first: z_{W-1}, z_{W-2}
    lags = np.stack([z[:, 3 - j] for j in range(p)], axis=1).astype(np.float64)
    design = np.column_stack([lags, np.ones(n)])
    ols = np.linalg.lstsq(design, z[:, 4].astype(np.float64), rcond=None)[0][:p]
    np.testing.assert_allclose(got, ols, atol=0.03)
    np.testing.assert_allclose(got, phi, atol=0.08)


@pytest.mark.parametrize("n, p", [(9, 0.9), (19, 0.9), (20, 0.9), (50, 0.8)])
def test_conformal_factor_is_the_finite_sample_rank(n, p):
    """The factor is the ceil((n + 1) p)-th smallest score (not the plain
    p-quantile): scores |y| of a unit interval about 0."""
    rng = np.random.default_rng(n)
    truth = rng.permutation(np.arange(1, n + 1) / n)[:, None]
    zero = np.zeros((n, 1))
    f = Forecast(zero, {p: zero - 1}, {p: zero + 1}, None)
    got = conformal_factors(f, truth)[p]
    rank = math.ceil((n + 1) * p - 1e-9)
    assert got == pytest.approx(np.sort(truth[:, 0])[rank - 1], abs=0)
    assert got >= np.quantile(truth, p)


def test_stacked_members_are_the_model_vmapped():
    """A stacked ensemble of K = 3: member k's initial parameters are
    ``model.init`` of the k-th split key; its loss is the mean of the members'
    own losses (with and without dropout keys), its gradient for member k is
    member k's own gradient / K, and its outputs are the members' outputs."""
    model = forecaster(
        jaxseq.cells.gru(4), window=W, horizon=H, strategy="direct", linear=2
    )
    ens = stacked(model, 3)
    key = jax.random.key(4)
    params = ens.init(key)
    keys = jax.random.split(key, 3)
    for k in range(3):
        one = model.init(keys[k])
        for a, b in zip(
            jax.tree.leaves(member(params, k)), jax.tree.leaves(one), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    # non-zero highways, so that every parameter matters
    params["ar"] = jax.random.normal(jax.random.key(5), params["ar"].shape) * 0.3
    rng = np.random.default_rng(2)
    z = rng.normal(size=(7, W + H)).astype(np.float32)
    cov = np.zeros((7, W + H - 1, 0), np.float32)
    # jitted: op by op, the recurrent loops dominate this test's time
    own_loss = jax.jit(lambda p: model.loss(p, (z, cov), None))
    own_grad = jax.jit(jax.grad(lambda p: model.loss(p, (z, cov), None)[0]))
    own = [own_loss(member(params, k)) for k in range(3)]
    loss, aux = jax.jit(lambda p: ens.loss(p, (z, cov), None))(params)
    assert float(loss) == pytest.approx(np.mean([float(o[0]) for o in own]), rel=1e-6)
    assert float(aux["mae"]) == pytest.approx(
        np.mean([float(o[1]["mae"]) for o in own]), rel=1e-6
    )
    grads = jax.jit(jax.grad(lambda p: ens.loss(p, (z, cov), None)[0]))(params)
    for k in range(3):
        g = own_grad(member(params, k))
        for a, b in zip(
            jax.tree.leaves(member(grads, k)), jax.tree.leaves(g), strict=True
        ):
            np.testing.assert_allclose(a, np.asarray(b) / 3, rtol=1e-4, atol=1e-7)
    out = np.asarray(ens.outputs(params, z[:, :W], cov))
    assert out.shape == (3, 7, H, 2)
    for k in range(3):
        np.testing.assert_allclose(
            out[k], model.outputs(member(params, k), z[:, :W], cov), atol=1e-6
        )
    # with a key: the mean of each member's loss under its own split key
    drop = forecaster(
        jaxseq.cells.gru(4), window=W, horizon=H, strategy="direct", dropout=0.5
    )
    dens = stacked(drop, 2)
    dp = dens.init(key)
    k_loss = jax.random.key(9)
    split = jax.random.split(k_loss, 2)
    drop_loss = jax.jit(lambda p, k: drop.loss(p, (z, cov), k)[0])
    expected = np.mean([float(drop_loss(member(dp, k), split[k])) for k in range(2)])
    got = jax.jit(lambda p, k: dens.loss(p, (z, cov), k)[0])(dp, k_loss)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"members: expected a positive int, got 0"):
        stacked(model, 0)


def test_linear_candidates_errors():
    for bad in ((), (2, 2), (0, 7), (0, True)):
        with pytest.raises(
            ValueError, match=r"linear: expected an int in \[0, window\] = \[0, 6\]"
        ):
            recurrent(RecurrentConfig(window=6, linear=bad), 2)
    with pytest.raises(ValueError, match=r"linear: the autoregressive highway"):
        recurrent(RecurrentConfig(strategy="seq2seq", linear=(0, 2)), 2)
    # several highway orders are weighed on held-out values too
    with pytest.raises(ValueError, match=r"holdout: several candidates"):
        recurrent(RecurrentConfig(transform="level", linear=(0, 2), holdout=0), 2)
