"""The compiled steps and generation loops of jaxseq.lm are cached per live
model (jaxseq._weakcache): reused while the model lives, released with it."""

from __future__ import annotations

import gc
import importlib
import weakref

import optax

from jaxseq import lm
from jaxseq.lm import stateful

gen_mod = importlib.import_module("jaxseq.lm.generate")  # lm.generate: the function


def _model():
    return lm.rnn_lm(12, cell="elman", embed_dim=4, hidden=4, num_layers=1)


def test_same_model_reuses_and_dead_model_is_released():
    model, opt = _model(), optax.sgd(0.1)
    a = lm.make_stream_train_step(model, opt)
    b = lm.make_stream_train_step(model, opt)
    assert a.value is b.value  # one jitted step: compiled once
    assert (
        lm.make_stream_eval_step(model).value is lm.make_stream_eval_step(model).value
    )
    g1 = lm.make_generator(model, max_new_tokens=3)
    g2 = lm.make_generator(model, max_new_tokens=3)
    assert g1.value is g2.value
    assert lm.make_generator(model, max_new_tokens=4).value is not g1.value
    ref = weakref.ref(model.apply)
    n_train = len(stateful._cached_train_step.cache)
    n_gen = len(gen_mod._cached_generator.cache)
    del model, a, b, g1, g2
    gc.collect()
    assert ref() is None  # the caches did not keep the model alive
    assert len(stateful._cached_train_step.cache) == n_train - 1
    assert len(gen_mod._cached_generator.cache) == n_gen - 1
