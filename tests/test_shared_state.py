"""No state shared by accident: module-level caches do not keep a user's function
(and what it closes over) alive, yet reuse the compiled function while it lives;
no mutable defaults."""

from __future__ import annotations

import gc
import weakref

import jax
import jax.numpy as jnp
import optax
import pytest

from jaxseq._weakcache import weak_cache
from jaxseq.train import _fingerprint
from jaxseq.train.step import make_eval_step, make_train_step


def _loss_fn():
    big = jnp.ones(3)  # what a closure may hold on to: a dataset, a model

    def loss_fn(w, batch, key):
        return jnp.sum((w * big - batch) ** 2), None

    return loss_fn


@pytest.mark.parametrize("make", [make_train_step, make_eval_step])
def test_step_cache_does_not_keep_the_loss_alive(make):
    loss_fn = _loss_fn()
    args = (optax.sgd(0.1),) if make is make_train_step else ()
    step = make(loss_fn, *args)
    assert make(loss_fn, *args).value is step.value  # reused while alive
    ref = weakref.ref(loss_fn)
    del loss_fn
    gc.collect()
    assert ref() is not None  # the step in use keeps its loss alive
    del step
    gc.collect()
    assert ref() is None


def test_optimizer_update_cache_is_weak():
    opt = optax.adam(1e-3)
    ref = weakref.ref(opt.update)
    update = _fingerprint._cached_update(opt.update)
    assert _fingerprint._cached_update(opt.update).value is update.value
    del opt, update
    gc.collect()
    assert ref() is None


def test_weak_cache_bound_methods_and_unhashable_functions():
    built = []

    def build(fn, n):
        built.append(n)
        return lambda x: fn(x) + n

    cached = weak_cache(build)

    class Model:
        def apply(self, x):
            return 2 * x

    model = Model()
    a = cached(model.apply, 1)
    b = cached(model.apply, 1)  # a fresh bound method, the same object: reused
    assert a.value is b.value and a(3) == b(3) == 7 and built == [1]
    ref = weakref.ref(model)
    del model, a, b
    gc.collect()
    assert ref() is None

    class Unhashable:
        __hash__ = None

        def __call__(self, x):
            return x

    assert cached(Unhashable(), 5)(1) == 6  # no cache, still correct
    assert cached(lambda x: x, [1])  # unhashable options: built afresh


def test_recipe_default_options_are_read_only():
    from jaxseq.models.classifier import Recipe

    with pytest.raises(TypeError):
        Recipe().options["hidden"] = 8  # would have changed every Recipe()
    assert dict(Recipe().options) == {}
    assert Recipe(options={"hidden": 8}).options == {"hidden": 8}


def test_parameter_check_cache_does_not_keep_a_cell_alive():
    """The runners check params against ``cell.init``'s shapes, cached per init
    function and input size; the cache must let the cell go."""
    from jaxseq import _checks, cells

    cell = cells.lstm(3)
    params = cell.init(jax.random.key(0), 2)
    first = _checks._init_shapes(cell, 2)
    assert _checks._init_shapes(cell, 2) is first  # reused while alive
    assert jax.tree.leaves(first[0])[0].shape == params.w_x.shape
    ref = weakref.ref(cell.init)
    del cell
    gc.collect()
    assert ref() is None
