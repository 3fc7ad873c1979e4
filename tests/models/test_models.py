"""Every registered model: shapes, padding invariance, configuration round trip,
option errors; the bag-of-n-grams statistics against an independent count."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq import models, text

from .conftest import SMALL, VOCAB, small

NAMES = models.names()


def test_every_registered_model_is_covered():
    assert set(NAMES) == set(SMALL)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_padding_invariance(name, batch):
    """Logits [B] float32; the same logits for a review alone and unpadded, and
    for the batch padded further with garbage ids in the padded positions."""
    model = small(name)
    params = model.init(jax.random.key(0))
    if model.adapt is not None:  # bow: data statistics and non-zero weights
        params = model.adapt(params, *batch, np.array([1, 0, 1, 0]))
        w = np.random.default_rng(2).normal(size=VOCAB).astype(np.float32)
        params = {**params, "w": jnp.asarray(w)}
    ids, lengths = batch
    apply = jax.jit(model.apply)
    reference = np.asarray(apply(params, ids, lengths))
    assert reference.shape == (4,) and reference.dtype == np.float32
    assert np.isfinite(reference).all()
    training = jax.jit(model.apply)(params, ids, lengths, key=jax.random.key(1))
    assert training.shape == (4,) and np.isfinite(training).all()

    # more padding, holding garbage ids
    rng = np.random.default_rng(1)
    longer = np.pad(ids, [(0, 0), (0, 7)])
    garbage = np.where(longer == 0, rng.integers(1, VOCAB, longer.shape), longer)
    garbage = garbage.astype(np.int32)
    np.testing.assert_allclose(apply(params, garbage, lengths), reference, atol=2e-6)
    for b in (1, 2):  # a review alone, unpadded
        n = int(lengths[b])
        alone = apply(params, ids[b : b + 1, :n], lengths[b : b + 1])
        np.testing.assert_allclose(alone[0], reference[b], rtol=1e-5, atol=2e-6)
    changed = ids.copy()
    changed[0] = rng.integers(2, VOCAB, ids.shape[1])  # other tokens: other output
    assert not np.allclose(apply(params, changed, lengths)[0], reference[0])


@pytest.mark.parametrize("name", NAMES)
def test_config_rebuilds_the_model(name):
    model = small(name)
    again = models.from_config(model.config)
    assert again.config == model.config
    shapes = [jax.eval_shape(m.init, jax.random.key(3)) for m in (model, again)]
    assert jax.tree.structure(shapes[0]) == jax.tree.structure(shapes[1])
    assert [a.shape for a in jax.tree.leaves(shapes[0])] == [
        a.shape for a in jax.tree.leaves(shapes[1])
    ]


def test_lab_model_is_the_seeds_architecture():
    model = models.build("lab", vocab_size=10_000)
    params = model.init(jax.random.key(0))
    assert params["embed"].shape == (10_000, 4)
    (lstm,) = params["rnn"]
    assert lstm.w_x.shape == (4, 16) and lstm.w_h.shape == (4, 16)
    assert params["head"]["dense_0"]["kernel"].shape == (4, 4)
    assert params["head"]["dense_1"]["kernel"].shape == (4, 1)
    # Keras' initialisers: embedding uniform +-0.05, forget-gate bias 1
    assert np.abs(params["embed"]).max() <= 0.05
    np.testing.assert_array_equal(lstm.b[4:8], 1.0)
    assert models.count_params(params) == 40_169


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("lstm", {"hidden": 0}, "hidden: expected a positive int"),
        ("lstm", {"pooling": "median"}, "pool: expected one of"),
        ("gru", {"dropout": 1.0}, r"dropout: expected a rate in \[0, 1\)"),
        ("transformer", {"dim": 10, "heads": 4}, "dim: expected a multiple of heads"),
        ("transformer", {"positions": "rotary"}, "positions: expected one of"),
        ("bow", {"scale": "tf"}, "scale: expected one of"),
        ("lab", {"cell": "gru"}, r"unknown option\(s\) \['cell'\]"),
    ],
)
def test_bad_options_name_the_argument(name, options, match):
    with pytest.raises(ValueError, match=match):
        models.build(name, vocab_size=VOCAB, **options)


def test_unknown_name_and_missing_vocab_size():
    with pytest.raises(ValueError, match="name: expected one of"):
        models.build("rnn9000", vocab_size=3)
    with pytest.raises(ValueError, match="vocab_size is required"):
        models.build("lstm")


def test_bad_inputs_are_refused_at_trace_time(batch):
    model = small("gru")
    params = model.init(jax.random.key(0))
    ids, lengths = batch
    with pytest.raises(ValueError, match=r"ids: expected rank 2 \[B, T\]"):
        model.apply(params, ids[0], lengths)
    with pytest.raises(ValueError, match=r"lengths: expected shape \(4,\)"):
        model.apply(params, ids, lengths[:2])
    with pytest.raises(TypeError, match="ids: expected integer ids"):
        model.apply(params, ids.astype(np.float32), lengths)


def test_learned_positions_refuse_longer_inputs(batch):
    model = models.build(
        "transformer",
        vocab_size=VOCAB,
        dim=8,
        heads=2,
        ffn=8,
        positions="learned",
        max_len=5,
    )
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="at most max_len=5 steps"):
        model.apply(params, *batch)


def test_bow_scales_match_an_independent_count():
    texts = ["a good good film", "a bad film", "good fun", "bad bad plot", "a plot"]
    labels = np.array([1, 0, 1, 0, 1])
    vocab = text.build_vocabulary(texts, text.word_tokenizer(ngram_range=(1, 2)))
    f = models.featurize(vocab, models.InputSpec(maxlen=16, unique=True), texts)
    presence = text.bag_of_words(vocab, texts, mode="binary", sparse=False) > 0
    np.testing.assert_array_equal(presence.sum(1), f.lengths)
    pos = 1 + presence[labels == 1].sum(0)
    neg = 1 + presence[labels == 0].sum(0)
    expected = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
    scale = models.bag.feature_scale(f.ids, f.lengths, labels, len(vocab), "nb")
    np.testing.assert_allclose(scale, expected, rtol=1e-6)
    idf = models.bag.feature_scale(f.ids, f.lengths, labels, len(vocab), "idf")
    np.testing.assert_allclose(idf[2:], text.idf(vocab)[2:], rtol=1e-6)
    # the logit is w . (scale * presence) + b
    model = models.build("bow", vocab_size=len(vocab))
    params = model.adapt(model.init(jax.random.key(0)), f.ids, f.lengths, labels)
    w = np.random.default_rng(0).normal(size=len(vocab)).astype(np.float32)
    params = {**params, "w": jnp.asarray(w), "b": jnp.asarray(0.5, jnp.float32)}
    expected_logits = (presence * expected) @ w + 0.5
    np.testing.assert_allclose(
        model.apply(params, f.ids, f.lengths), expected_logits, rtol=1e-5, atol=1e-5
    )


def test_transformer_attention_mask_hides_the_padding():
    """Inside an encoder block, valid positions do not see padded ones: with
    the padding mask, changing the padded inputs leaves the valid outputs as
    they are; with an all-true mask they change."""
    import flax.linen as nn

    from jaxseq.models.transformer import Block

    block = Block(heads=2, ffn=8, dropout=0.0)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 6, 4)), jnp.float32)
    lengths = np.array([4, 2])
    valid = np.arange(6)[None, :] < lengths[:, None]
    other = jnp.where(valid[..., None], x, 5.0 * jnp.asarray(rng.normal(size=x.shape)))
    params = block.init(
        jax.random.key(0), x, nn.make_attention_mask(valid, valid), True
    )
    for mask, same in (
        (nn.make_attention_mask(valid, valid), True),
        (jnp.ones((2, 1, 6, 6), bool), False),
    ):
        a = block.apply(params, x, mask, True)
        b = block.apply(params, other, mask, True)
        close = np.allclose(np.asarray(a)[valid], np.asarray(b)[valid], atol=1e-6)
        assert close == same
