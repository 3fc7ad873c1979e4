"""Robbins–Monro schedule (closed form, 0-based count, refusals), SGD converging
to the closed-form OLS solution, and optimisers by name being Optax's own."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import init_state, optimizer, robbins_monro, train_step_fn


@pytest.mark.parametrize(
    "a,b,power", [(0.3, 2.0, 0.75), (1.0, 10.0, 1.0), (2.5, 0.5, 0.51)]
)
def test_robbins_monro_closed_form_at_0_1_10(a, b, power):
    schedule = robbins_monro(a, b, power)
    for k in (0, 1, 10):
        expected = a / (b + k) ** power  # Python float64 arithmetic
        np.testing.assert_allclose(float(schedule(k)), expected, rtol=1e-6)


def test_first_optax_update_uses_count_zero():
    """Inside optax.sgd the first update is scaled by schedule(0), the second by
    schedule(1): the 0-based convention end to end."""
    a, b, power = 0.5, 4.0, 0.8
    opt = optax.sgd(robbins_monro(a, b, power))
    params = jnp.array([1.0, -2.0])
    grad = jnp.array([0.25, 1.5])
    state = opt.init(params)
    for k in range(2):
        updates, state = opt.update(grad, state, params)
        np.testing.assert_allclose(
            updates, -(a / (b + k) ** power) * np.asarray(grad), rtol=1e-6
        )


@pytest.mark.parametrize(
    "kwargs,name,value",
    [
        ({"a": 1.0, "b": 1.0, "power": 0.5}, "power", "0.5"),
        ({"a": 1.0, "b": 1.0, "power": 0.25}, "power", "0.25"),
        ({"a": 1.0, "b": 1.0, "power": 1.01}, "power", "1.01"),
        ({"a": 1.0, "b": 1.0, "power": 2.0}, "power", "2.0"),
        ({"a": 0.0, "b": 1.0, "power": 1.0}, "a", "0.0"),
        ({"a": -1.0, "b": 1.0, "power": 1.0}, "a", "-1.0"),
        ({"a": 1.0, "b": 0.0, "power": 1.0}, "b", "0.0"),
        ({"a": 1.0, "b": -3.0, "power": 1.0}, "b", "-3.0"),
        ({"a": float("nan"), "b": 1.0, "power": 1.0}, "a", "nan"),
    ],
)
def test_robbins_monro_refuses_parameters_violating_the_conditions(kwargs, name, value):
    with pytest.raises(ValueError, match=rf"^{name}: expected .*got {value}\.$"):
        robbins_monro(**kwargs)


def test_robbins_monro_refuses_non_numbers():
    with pytest.raises(TypeError, match="power"):
        robbins_monro(1.0, 1.0, "1")


def _least_squares(seed=0, n=2000, d=3, noise=0.5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ np.array([1.5, -2.0, 0.5]) + noise * rng.normal(size=n)
    ols = np.linalg.lstsq(x, y, rcond=None)[0]  # closed form, float64
    return x.astype(np.float32), y.astype(np.float32), ols


def _sgd_run(opt, x, y, steps, batch=10, seed=1):
    """Plain SGD with uniformly sampled minibatches (unbiased gradients of the
    empirical risk), the whole run in one lax.scan over the un-jitted step."""
    idx = np.random.default_rng(seed).integers(0, len(y), size=(steps, batch))
    step = train_step_fn(
        lambda w, bt, k: (jnp.mean((bt[0] @ w - bt[1]) ** 2), None), opt
    )
    state = init_state(jnp.zeros(x.shape[1]), opt, jax.random.key(0))
    x, y = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def run(state, idx):
        def body(s, i):
            s, _ = step(s, (x[i], y[i]))
            return s, None

        return jax.lax.scan(body, state, idx)[0]

    return np.asarray(run(state, idx).params)


def test_sgd_with_robbins_monro_converges_to_ols():
    x, y, ols = _least_squares()
    w = _sgd_run(optax.sgd(robbins_monro(a=1.0, b=10.0, power=1.0)), x, y, steps=20000)
    np.testing.assert_allclose(w, ols, atol=5e-3)
    # The same run with a constant step keeps bouncing around the optimum at the
    # noise level: the decaying schedule is what buys the precision above.
    w_const = _sgd_run(optax.sgd(0.1), x, y, steps=20000)
    assert np.abs(w_const - ols).max() > np.abs(w - ols).max()


@pytest.mark.parametrize(
    "name,factory",
    [
        ("sgd", lambda lr: optax.sgd(lr)),
        ("momentum", lambda lr: optax.sgd(lr, momentum=0.9)),
        ("nesterov", lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True)),
        ("adagrad", lambda lr: optax.adagrad(lr)),
        ("rmsprop", lambda lr: optax.rmsprop(lr)),
        ("adam", lambda lr: optax.adam(lr)),
        ("adamw", lambda lr: optax.adamw(lr)),
    ],
)
def test_optimizer_by_name_is_optax(name, factory):
    params = jnp.array([0.5, -1.0, 2.0])
    grads = [jnp.array([0.1, -0.3, 0.7]), jnp.array([-0.2, 0.4, 0.05])]
    mine, ref = optimizer(name, 0.05), factory(0.05)
    s_mine, s_ref = mine.init(params), ref.init(params)
    for g in grads:
        u_mine, s_mine = mine.update(g, s_mine, params)
        u_ref, s_ref = ref.update(g, s_ref, params)
        np.testing.assert_array_equal(u_mine, u_ref)


def test_optimizer_clip_norm_and_errors():
    opt = optimizer("sgd", 1.0, clip_norm=1.0)
    g = jnp.array([3.0, 4.0])  # norm 5
    u, _ = opt.update(g, opt.init(g), g)
    np.testing.assert_allclose(u, [-0.6, -0.8], rtol=1e-6)
    with pytest.raises(ValueError, match=r"name: expected one of .*got 'lbfgs'"):
        optimizer("lbfgs", 0.1)
    with pytest.raises(ValueError, match=r"clip_norm: expected a positive norm, got 0"):
        optimizer("adam", 0.1, clip_norm=0)


@pytest.mark.parametrize(
    "lr,error,match",
    [
        (
            -0.01,
            ValueError,
            r"learning_rate: expected a positive finite number, got -0\.01\.",
        ),
        (
            0.0,
            ValueError,
            r"learning_rate: expected a positive finite number, got 0\.0\.",
        ),
        (
            float("nan"),
            ValueError,
            r"learning_rate: expected a positive finite number, got nan\.",
        ),
        (float("inf"), ValueError, r"got inf\."),
        ("0.1", TypeError, r"learning_rate: expected a positive number or a schedule"),
        (True, TypeError, r"learning_rate: expected a positive number or a schedule"),
        (np.array([0.1, 0.2]), TypeError, r"learning_rate: expected a positive number"),
        (
            optax.linear_schedule(0.1, -0.1, transition_steps=100),
            ValueError,
            r"learning_rate: expected a schedule of finite step sizes >= 0, got "
            r"-0\.1\d* at count 100\.",
        ),
        (
            lambda count: jnp.log(count - 5.0),
            ValueError,
            r"learning_rate: expected a schedule of finite step sizes >= 0, got nan "
            r"at count 0\.",
        ),
    ],
    ids=[
        "negative",
        "zero",
        "nan",
        "inf",
        "str",
        "bool",
        "array",
        "schedule-negative",
        "schedule-nan",
    ],
)
def test_optimizer_refuses_bad_learning_rates(lr, error, match):
    with pytest.raises(error, match=match):
        optimizer("adam", lr)


def test_optimizer_accepts_a_warmup_from_zero_and_jax_scalars():
    warmup = optax.linear_schedule(0.0, 0.1, transition_steps=10)
    assert optimizer("sgd", warmup) is not None
    opt = optimizer("sgd", jnp.float32(0.5))
    g = jnp.array([1.0, -2.0])
    u, _ = opt.update(g, opt.init(g))
    np.testing.assert_allclose(u, -0.5 * np.asarray(g))
