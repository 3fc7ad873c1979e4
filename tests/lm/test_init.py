"""TorchInit: PyTorch word_language_model's initialisation of an rnn_lm, checked
against the closed-form moments of its distributions and against a real
PyTorch RNNModel of the same shapes."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxseq import cells
from jaxseq.lm import TorchInit, rnn_lm
from jaxseq.lm.models import from_config

V, D = 2000, 64


def _moments_ok(x: np.ndarray, var: float, mu4: float, bound: float) -> None:
    """Range within ``[-bound, bound]``; mean and variance within 5 Monte Carlo
    standard errors of the formula (``var`` and the 4th central moment ``mu4``
    of the distribution)."""
    x = np.asarray(x, np.float64).ravel()
    n = x.size
    assert np.abs(x).max() <= bound * (1 + 1e-6)
    assert abs(x.mean()) <= 5 * np.sqrt(var / n)
    assert abs(x.var() - var) <= 5 * np.sqrt((mu4 - var**2) / n)


def _uniform(a: float) -> tuple[float, float]:
    return a**2 / 3, a**4 / 5  # variance, 4th central moment of U(-a, a)


def _sum_of_two(a: float) -> tuple[float, float]:
    var, mu4 = _uniform(a)
    return 2 * var, 2 * mu4 + 6 * var**2  # X + Y, X and Y independent


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
@pytest.mark.parametrize("tied", [True, False])
def test_moments_match_the_recipe(cell, tied):
    lm = rnn_lm(V, cell=cell, embed_dim=D, hidden=D, num_layers=2, tied=tied,
                init=TorchInit())  # fmt: skip
    p = lm.init(jax.random.key(0))
    _moments_ok(p["embed"], *_uniform(0.1), 0.1)
    assert (np.asarray(p["out"].b) == 0).all()
    if tied:
        assert p["out"].w is None
    else:
        _moments_ok(p["out"].w, *_uniform(0.1), 0.1)
    a = 1 / np.sqrt(D)
    for layer in p["rnn"]:
        for name in layer._fields:
            x = np.asarray(getattr(layer, name))
            if name == "b":  # b_ih + b_hh: triangular on [-2a, 2a]
                _moments_ok(x, *_sum_of_two(a), 2 * a)
                assert np.abs(x).max() > a  # not a plain U(-a, a)
            else:
                _moments_ok(x, *_uniform(a), a)


def test_default_init_unchanged_and_config_round_trip():
    lm = rnn_lm(50, embed_dim=8, hidden=8, init=TorchInit(embed_scale=0.2))
    assert lm.config["init"] == {"torch": {"embed_scale": 0.2, "readout_scale": 0.1}}
    assert from_config(lm.config).config == lm.config
    plain = rnn_lm(50, embed_dim=8, hidden=8)
    assert "init" not in plain.config  # configs of older runs stay valid
    p = plain.init(jax.random.key(0))
    assert np.abs(np.asarray(p["embed"])).max() <= 0.05  # jaxseq's default


def test_bad_init():
    with pytest.raises(TypeError, match="init: expected None or a jaxseq.lm.TorchInit"):
        rnn_lm(50, init="torch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init: TorchInit draws"):
        rnn_lm(50, cell=cells.peephole_lstm(8), embed_dim=8, init=TorchInit())


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_matches_torch_rnnmodel_statistics(kind):
    """Same shapes as PyTorch's RNNModel (init_weights + nn.LSTM/GRU defaults):
    each parameter group's standard deviation and range agree within Monte
    Carlo error (5 standard errors of both samples)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    rec = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](D, D, 2)
    enc, dec = nn.Embedding(V, D), nn.Linear(D, V)
    nn.init.uniform_(enc.weight, -0.1, 0.1)  # RNNModel.init_weights
    nn.init.uniform_(dec.weight, -0.1, 0.1)
    nn.init.zeros_(dec.bias)
    lm = rnn_lm(V, cell=kind, embed_dim=D, hidden=D, num_layers=2, init=TorchInit())
    p = lm.init(jax.random.key(1))
    t = lambda x: x.detach().numpy().ravel()  # noqa: E731
    pairs = [(t(enc.weight), p["embed"]), (t(dec.weight), p["out"].w)]
    for i, layer in enumerate(p["rnn"]):
        pairs.append((t(getattr(rec, f"weight_ih_l{i}")), layer.w_x))
        pairs.append((t(getattr(rec, f"weight_hh_l{i}")), layer.w_h))
        b_ih, b_hh = t(getattr(rec, f"bias_ih_l{i}")), t(getattr(rec, f"bias_hh_l{i}"))
        if kind == "lstm":  # one jaxseq bias: PyTorch's two, summed
            pairs.append((b_ih + b_hh, layer.b))
        else:
            pairs += [(b_ih, layer.b_x), (b_hh, layer.b_h)]
    for ref, ours in pairs:
        ours = np.asarray(ours, np.float64).ravel()
        ref = np.asarray(ref, np.float64)
        assert ref.size == ours.size
        # sd of a sample variance: sqrt((mu4 - var^2) / n) <= var * sqrt(2 / n)
        # for these platykurtic distributions (uniform, triangular)
        se = np.sqrt(sum(np.var(x) ** 2 * 2 / x.size for x in (ref, ours)))
        assert abs(np.var(ours) - np.var(ref)) <= 5 * se
        assert abs(ours.mean() - ref.mean()) <= 5 * np.sqrt(
            np.var(ref) / ref.size + np.var(ours) / ours.size
        )
