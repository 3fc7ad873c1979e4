"""An LM's layers as a classifier's start, and ULMFiT's fine-tuning recipe:
the transferred classifier computes the LM's states (read through the LM's own
``apply``), frozen groups stay put, each group moves at its own rate, and the
slanted triangular schedule is Howard & Ruder's eq. 3."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxseq
from jaxseq import cells, models, text
from jaxseq.lm import (
    EOS_ID,
    FineTuning,
    Readout,
    SlantedTriangular,
    classifier_features,
    classifier_for,
    fine_tuning,
    layer_groups,
    lm_vocabulary,
    pooled_features,
    rnn_lm,
    slanted_triangular,
    transfer_params,
    transformer_lm,
    with_boundary,
)

V, D, H = 23, 6, 5


def _probe_lm(cell: str, layers: int):
    """A random LM whose readout copies the last layer's state into the first
    ``H`` logits: ``lm.apply`` then shows the states it computes."""
    lm = rnn_lm(V, cell=cell, embed_dim=D, hidden=H, num_layers=layers)
    params = lm.init(jax.random.key(1))
    w = np.zeros((H, V), np.float32)
    w[:, :H] = np.eye(H)
    params["out"] = Readout(w=jnp.asarray(w), b=jnp.zeros((V,), jnp.float32))
    return lm, params


@pytest.mark.parametrize("cell, layers", [("lstm", 2), ("gru", 1)])
def test_classifier_computes_the_lms_states(cell, layers):
    lm, lm_params = _probe_lm(cell, layers)
    model = classifier_for(lm, pooling="mean_max")
    params = transfer_params(lm, lm_params, model, jax.random.key(2))
    rng = np.random.default_rng(0)
    lengths = np.array([6, 3])
    ids = np.zeros((2, 8), np.int32)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(3, V, n)
    feats = with_boundary(models.Features(ids, lengths, 0, 0))
    assert (feats.ids[:, 0] == EOS_ID).all() and feats.lengths.tolist() == [7, 4]

    # the LM, one review at a time, from its initial state, unpadded
    states, finals = [], []
    run_lm = jax.jit(lambda p, ids: lm.apply(p, lm.init_carry(p, 1), ids))
    for b, n in enumerate(feats.lengths):
        carry, logits = run_lm(lm_params, jnp.asarray(feats.ids[b : b + 1, :n]))
        states.append(np.asarray(logits[0, :, :H]))
        finals.append(carry)

    # the classifier's recurrent layers on the padded batch
    stack = jaxseq.stack(models.recurrent.CELLS[cell](H), layers)
    xs = text.embed(params["embed"], jnp.asarray(feats.ids))
    carries, ys = jax.jit(lambda p, x, n: stack.apply(p, x, lengths=n))(
        params["rnn"], xs, jnp.asarray(feats.lengths)
    )
    for b, n in enumerate(feats.lengths):
        np.testing.assert_allclose(np.asarray(ys[b, :n]), states[b], atol=1e-5)
        for layer in range(layers):
            for got, want in zip(
                jax.tree.leaves(carries[layer]),
                jax.tree.leaves(finals[b][layer]),
                strict=True,
            ):
                np.testing.assert_allclose(np.asarray(got[b]), want[0], atol=1e-5)

    # and its logit: the head on mean and max of the LM's states
    ids, lengths = jnp.asarray(feats.ids), jnp.asarray(feats.lengths)
    logits = jax.jit(model.apply)(params, ids, lengths)
    pooled = jax.jit(lambda p, i, n: pooled_features(model, p, i, n))(
        params, ids, lengths
    )
    dense = params["head"]["dense_0"]
    for b in range(2):
        want_pooled = np.concatenate([states[b].mean(0), states[b].max(0)])
        np.testing.assert_allclose(np.asarray(pooled[b]), want_pooled, atol=1e-5)
        want = want_pooled @ np.asarray(dense["kernel"])[:, 0] + float(dense["bias"][0])
        np.testing.assert_allclose(float(logits[b]), want, atol=1e-5)


def _sgd_setup(recipe: FineTuning, total_steps: int = 20):
    model = models.build("lstm", vocab_size=V, embed_dim=D, hidden=H, layers=2)
    params = model.init(jax.random.key(0))
    loss_fn = models.loss_function(model)
    rng = np.random.default_rng(1)
    batch = (
        jnp.asarray(rng.integers(1, V, (4, 7)), jnp.int32),
        jnp.array([7, 5, 3, 6], jnp.int32),
        jnp.array([0.0, 1.0, 1.0, 0.0]),
    )
    grad = jax.jit(jax.grad(lambda p: loss_fn(p, batch, None)[0]))
    opt = fine_tuning(params, recipe, total_steps)
    update = jax.jit(opt.update)
    return params, grad, opt, update


def _moved(before, after, groups):
    """Group index -> whether any of its leaves changed."""
    out: dict[int, bool] = {}
    for a, b, g in zip(
        jax.tree.leaves(before),
        jax.tree.leaves(after),
        jax.tree.leaves(groups),
        strict=True,
    ):
        out[g] = out.get(g, False) or not np.array_equal(np.asarray(a), np.asarray(b))
    return out


def test_gradual_unfreezing_moves_one_more_group_per_stage():
    recipe = FineTuning(learning_rate=0.1, unfreeze_every=2, schedule=None)
    params, grad, opt, update = _sgd_setup(recipe)
    groups = layer_groups(params)
    assert sorted(set(jax.tree.leaves(groups))) == [0, 1, 2, 3]
    state = opt.init(params)
    moved_at = []
    for _ in range(8):
        updates, state = update(grad(params), state, params)
        new = optax.apply_updates(params, updates)
        moved_at.append(_moved(params, new, groups))
        params = new
    # steps 0-1: the head only; 2-3: + the top LSTM; 4-5: + the first; 6-: all
    for step, moved in enumerate(moved_at):
        assert moved == {g: g <= step // 2 for g in range(4)}, (step, moved)


@pytest.mark.parametrize("decay", [2.6, 1.0])
def test_discriminative_rates_scale_each_groups_sgd_step(decay):
    lr = 0.05
    recipe = FineTuning(
        learning_rate=lr,
        decay=decay,
        schedule=None,
        optimizer=optax.sgd,
        clip_norm=None,
    )
    params, grad, opt, update = _sgd_setup(recipe)
    g = grad(params)
    updates, _ = update(g, opt.init(params), params)
    for u, gr, group in zip(
        jax.tree.leaves(updates),
        jax.tree.leaves(g),
        jax.tree.leaves(layer_groups(params)),
        strict=True,
    ):
        want = -lr / decay**group * np.asarray(gr, np.float64)
        np.testing.assert_allclose(np.asarray(u), want, rtol=1e-5, atol=1e-12)


def test_schedule_scales_every_group_from_its_first_step():
    lr, total = 0.05, 40
    recipe = FineTuning(learning_rate=lr, optimizer=optax.sgd, clip_norm=None)
    params, grad, opt, update = _sgd_setup(recipe, total)
    g = grad(params)
    state = opt.init(params)
    g_leaves = [np.asarray(a).ravel() for a in jax.tree.leaves(g)]
    groups = jax.tree.leaves(layer_groups(params))
    rates, per_group = [], []
    for _ in range(6):  # rising part: cut = 4 steps
        updates, state = update(g, state, params)
        for u, gr, group in zip(
            jax.tree.leaves(updates), g_leaves, groups, strict=True
        ):
            i = np.abs(gr).argmax()  # every group: the same rate times 2.6**-g
            rate = -float(np.asarray(u).ravel()[i]) / float(gr[i]) * 2.6**group
            per_group.append(rate)
        rates.append(rate)
    want = [lr * (1 + p * 31) / 32 for p in (0, 0.25, 0.5, 0.75, 1.0, 1 - 1 / 36)]
    np.testing.assert_allclose(rates, want, rtol=1e-4)
    np.testing.assert_allclose(per_group, np.repeat(want, len(groups)), rtol=1e-4)


@pytest.mark.parametrize(
    "total, cut_frac, ratio", [(100, 0.1, 32.0), (37, 0.1, 32.0), (50, 0.3, 8.0)]
)
def test_slanted_triangular_is_howard_and_ruders_equation_3(total, cut_frac, ratio):
    peak = 0.01
    schedule = slanted_triangular(peak, total, SlantedTriangular(cut_frac, ratio))
    t = np.arange(total + 5)
    cut = np.floor(total * cut_frac)
    p = np.where(t < cut, t / cut, 1 - (t - cut) / (cut * (1 / cut_frac - 1)))
    eq3 = peak * (1 + p * (ratio - 1)) / ratio
    got = np.asarray(jax.vmap(schedule)(jnp.asarray(t)))
    # eq. 3 holds over the run; past the decay's end (p < 0 only when
    # total * cut_frac is not a whole number, or beyond the run) it stays at
    # the lowest rate
    end = cut / cut_frac
    np.testing.assert_allclose(got[t <= end], eq3[t <= end], rtol=1e-5)
    np.testing.assert_allclose(got[t > end], peak / ratio, rtol=1e-5)
    assert got.argmax() == cut and got.max() == pytest.approx(peak)


def test_classifier_features_keep_the_last_tokens_after_eos():
    vocab = lm_vocabulary(["a b c d e", "b c"], text.word_tokenizer())
    f = classifier_features(vocab, ["a b c d e", "c", ""], maxlen=4)
    ids = [[vocab.index[t] for t in row] for row in (["c", "d", "e"], ["c"])]
    assert f.ids.tolist() == [
        [EOS_ID, *ids[0]],
        [EOS_ID, *ids[1], 0, 0],
        [EOS_ID, 0, 0, 0],
    ]
    assert f.lengths.tolist() == [4, 2, 1] and f.truncated == 1


def test_bad_input_names_the_argument():
    lm, lm_params = _probe_lm("lstm", 1)
    key = jax.random.key(0)
    other_vocab = models.build("lstm", vocab_size=V + 1, embed_dim=D, hidden=H)
    with pytest.raises(ValueError, match=r"model.config\['vocab_size'\]: expected 23"):
        transfer_params(lm, lm_params, other_vocab, key)
    wide = models.build("lstm", vocab_size=V, embed_dim=D, hidden=H + 1)
    with pytest.raises(
        ValueError, match=r"model.config\['hidden'\]: expected 5.*got 6"
    ):
        transfer_params(lm, lm_params, wide, key)
    bi = models.build("lstm", vocab_size=V, embed_dim=D, hidden=H, bidirectional=True)
    with pytest.raises(ValueError, match=r"model.config\['bidirectional'\]"):
        transfer_params(lm, lm_params, bi, key)
    gru = models.build("gru", vocab_size=V, embed_dim=D, hidden=H)
    with pytest.raises(ValueError, match=r"model: expected a 'lstm' recurrent"):
        transfer_params(lm, lm_params, gru, key)
    model = classifier_for(lm)
    bad = {**lm_params, "embed": lm_params["embed"][:, :3]}
    with pytest.raises(
        ValueError,
        match=r"lm_params\['embed'\]: expected arrays \['\(23, 6\) float32'\]"
        r".*got \['\(23, 3\) float32'\]",
    ):
        transfer_params(lm, bad, model, key)
    with pytest.raises(ValueError, match="lm_params: expected the LM's parameters"):
        transfer_params(lm, [1, 2], model, key)
    with pytest.raises(ValueError, match="lm: expected a recurrent LM"):
        classifier_for(transformer_lm(V, dim=8, heads=2, ffn=8, blocks=1))
    plain = rnn_lm(V, cell=cells.gru(H, reset_after=False), embed_dim=D)
    with pytest.raises(ValueError, match="lm: expected the classifier's 'gru' cell"):
        classifier_for(plain)
    with pytest.raises(ValueError, match="total_steps: expected at least 10 steps"):
        slanted_triangular(0.01, 9)
    with pytest.raises(ValueError, match=r"shape.cut_frac: expected a fraction"):
        slanted_triangular(0.01, 100, SlantedTriangular(cut_frac=1.5))
    params = model.init(key)
    with pytest.raises(ValueError, match=r"recipe.decay: expected a number >= 1"):
        fine_tuning(params, FineTuning(decay=0.5), 10)
    with pytest.raises(ValueError, match=r"recipe.unfreeze_every: expected None or"):
        fine_tuning(params, FineTuning(unfreeze_every=0), 10)
    with pytest.raises(ValueError, match="model: expected a unidirectional"):
        pooled_features(bi, bi.init(key), jnp.ones((1, 3), jnp.int32), jnp.array([3]))
    with pytest.raises(ValueError, match="params: expected a recurrent classifier"):
        layer_groups({"w": 1})
    vocab = text.build_vocabulary(["a b"], text.word_tokenizer())
    with pytest.raises(ValueError, match="vocab: expected '<eos>' at id 2"):
        classifier_features(vocab, ["a"], maxlen=4)
    vocab = lm_vocabulary(["a b"], text.word_tokenizer())
    with pytest.raises(ValueError, match="maxlen: expected an int >= 2"):
        classifier_features(vocab, ["a"], maxlen=1)
