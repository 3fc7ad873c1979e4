"""The same weights give the same outputs as flax.linen and torch.nn (float32,
1e-5). torch is optional (``pip install -e .[peers]``): its tests skip without it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.cells import elman, gru, lstm
from jaxseq.interop import flax as jflax

B, T, F, H = 4, 8, 3, 5
LENGTHS = np.array([8, 5, 2, 7])
TOL = dict(rtol=1e-5, atol=1e-5)


def inputs(seed=0):
    return jax.random.normal(jax.random.key(seed), (B, T, F))


# ---------------------------------------------------------------- flax.linen
nn = pytest.importorskip("flax.linen")

FLAX_CASES = {
    "LSTMCell": (lambda: nn.LSTMCell(H), lambda: lstm(H), jflax.lstm_from_linen),
    "OptimizedLSTMCell": (
        lambda: nn.OptimizedLSTMCell(H),
        lambda: lstm(H),
        jflax.lstm_from_linen,
    ),
    "GRUCell": (lambda: nn.GRUCell(H), lambda: gru(H), jflax.gru_from_linen),
    "SimpleCell": (lambda: nn.SimpleCell(H), lambda: elman(H), jflax.elman_from_linen),
}


def _randomise(variables, seed=1):
    """Flax initialises biases at zero: perturb every leaf so biases are tested."""
    leaves, treedef = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        treedef,
        [
            a + 0.3 * jax.random.normal(k, a.shape)
            for k, a in zip(keys, leaves, strict=True)
        ],
    )


@pytest.mark.parametrize("name", list(FLAX_CASES))
def test_flax_linen_rnn_same_weights(name):
    make_flax, make_ours, convert = FLAX_CASES[name]
    xs = inputs()
    flax_rnn = nn.RNN(make_flax(), return_carry=True)
    variables = _randomise(flax_rnn.init(jax.random.key(0), xs))
    carry_f, ys_f = flax_rnn.apply(variables, xs)
    cell = make_ours()
    params = convert(variables["params"]["cell"])
    carry, ys = jaxseq.rnn(cell, params, xs)
    np.testing.assert_allclose(ys, ys_f, **TOL)
    h_flax = carry_f[1] if isinstance(carry_f, tuple) else carry_f  # LSTM: (c, h)
    np.testing.assert_allclose(carry.h, h_flax, **TOL)
    if name.endswith("LSTMCell"):
        np.testing.assert_allclose(carry.c, carry_f[0], **TOL)


@pytest.mark.parametrize("name", ["OptimizedLSTMCell", "GRUCell"])
def test_flax_linen_rnn_with_seq_lengths_and_reverse(name):
    make_flax, make_ours, convert = FLAX_CASES[name]
    xs = inputs(2)
    cell = make_ours()
    for reverse in (False, True):
        flax_rnn = nn.RNN(
            make_flax(), return_carry=True, reverse=reverse, keep_order=True
        )
        variables = _randomise(flax_rnn.init(jax.random.key(0), xs), seed=3)
        carry_f, ys_f = flax_rnn.apply(variables, xs, seq_lengths=jnp.asarray(LENGTHS))
        params = convert(variables["params"]["cell"])
        carry, ys = jaxseq.rnn(cell, params, xs, lengths=LENGTHS, reverse=reverse)
        mask = np.arange(T)[None, :] < LENGTHS[:, None]
        # flax computes (unspecified) values at padded steps; compare the valid ones
        np.testing.assert_allclose(np.asarray(ys)[mask], np.asarray(ys_f)[mask], **TOL)
        h_flax = carry_f[1] if isinstance(carry_f, tuple) else carry_f
        np.testing.assert_allclose(carry.h, h_flax, **TOL)


# ---------------------------------------------------------------- torch.nn
def _torch():
    return pytest.importorskip(
        "torch", reason="torch not installed (optional peer: pip install -e .[peers])"
    )


TORCH_MODES = [
    ("LSTM", {}),
    ("GRU", {}),
    ("RNN", {"nonlinearity": "tanh"}),
    ("RNN", {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize(
    "mode,kw", TORCH_MODES, ids=["lstm", "gru", "rnn_tanh", "rnn_relu"]
)
def test_torch_two_layer_bidirectional_packed(mode, kw):
    torch = _torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from jaxseq.interop.torch import from_torch

    torch.manual_seed(0)
    module = getattr(torch.nn, mode)(
        F, H, num_layers=2, bidirectional=True, batch_first=True, **kw
    )
    with torch.no_grad():  # nonzero, distinct biases everywhere
        for name, p in module.named_parameters():
            if "bias" in name:
                p.uniform_(-0.5, 0.5)
    xs = np.array(inputs(4))
    packed = pack_padded_sequence(
        torch.from_numpy(xs),
        torch.from_numpy(LENGTHS),
        batch_first=True,
        enforce_sorted=False,
    )
    with torch.no_grad():
        out, state = module(packed)
    ys_t, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    h_n = state[0] if mode == "LSTM" else state

    layer, params = from_torch(module)
    carries, ys = jax.jit(lambda p, x: layer.apply(p, x, lengths=LENGTHS))(params, xs)
    np.testing.assert_allclose(ys, ys_t.numpy(), **TOL)
    # h_n: [num_layers * 2, B, H] ordered (layer0 fw, layer0 bw, layer1 fw, ...)
    ours_h = np.stack([c.h for layer_c in carries for c in (layer_c.fw, layer_c.bw)])
    np.testing.assert_allclose(ours_h, h_n.numpy(), **TOL)
    if mode == "LSTM":
        ours_c = np.stack([c.c for lc in carries for c in (lc.fw, lc.bw)])
        np.testing.assert_allclose(ours_c, state[1].numpy(), **TOL)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_torch_unidirectional_with_initial_state(mode):
    torch = _torch()
    from jaxseq.interop.torch import from_torch

    torch.manual_seed(1)
    module = getattr(torch.nn, mode)(F, H, num_layers=1, batch_first=True)
    xs = np.array(inputs(5))
    h0 = np.array(jax.random.normal(jax.random.key(6), (1, B, H)))
    c0 = np.array(jax.random.normal(jax.random.key(7), (1, B, H)))
    with torch.no_grad():
        if mode == "LSTM":
            ys_t, (h_t, _) = module(
                torch.from_numpy(xs), (torch.from_numpy(h0), torch.from_numpy(c0))
            )
            carry0 = (jaxseq.cells.LSTMCarry(h=h0[0], c=c0[0]),)
        else:
            ys_t, h_t = module(torch.from_numpy(xs), torch.from_numpy(h0))
            kind = jaxseq.cells.GRUCarry if mode == "GRU" else jaxseq.cells.ElmanCarry
            carry0 = (kind(h=h0[0]),)
    layer, params = from_torch(module)
    carries, ys = layer.apply(params, xs, carry0=carry0)
    np.testing.assert_allclose(ys, ys_t.numpy(), **TOL)
    np.testing.assert_allclose(carries[0].h, h_t[0].numpy(), **TOL)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_torch_export_round_trip(mode, key):
    torch = _torch()
    from jaxseq.interop.torch import from_torch, to_state_dict

    cell = {"LSTM": lstm, "GRU": gru, "RNN": elman}[mode](H)
    layer = jaxseq.stack(cell, num_layers=2, bidirectional=True)
    params = jax.tree.map(lambda a: a + 0.1, layer.init(key, F))
    module = getattr(torch.nn, mode)(
        F, H, num_layers=2, bidirectional=True, batch_first=True
    )
    module.load_state_dict(
        {k: torch.from_numpy(v) for k, v in to_state_dict(layer, params).items()}
    )
    xs = np.array(inputs(6))
    with torch.no_grad():
        ys_t = module(torch.from_numpy(xs))[0].numpy()
    _, ys = layer.apply(params, xs)
    np.testing.assert_allclose(ys, ys_t, **TOL)
    _, back = from_torch(module)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    _, ys_back = layer.apply(back, xs)
    np.testing.assert_allclose(ys_back, ys, **TOL)


def test_torch_importer_errors():
    torch = _torch()
    from jaxseq.interop.torch import from_torch, to_state_dict

    with pytest.raises(ValueError, match="module.proj_size: expected 0"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match="module: expected torch.nn.LSTM"):
        from_torch(torch.nn.Linear(3, 4))
    layer = jaxseq.stack(gru(4, reset_after=False))
    with pytest.raises(ValueError, match="reset_after=True form"):
        to_state_dict(layer, layer.init(jax.random.key(0), 3))
