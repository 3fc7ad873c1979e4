"""The one-call export to PyTorch (:func:`jaxseq.interop.torch.to_torch`).

The importer and ``to_state_dict`` are checked in ``tests/cells/test_peers.py``;
torch is an optional peer and these tests skip without it.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxseq

torch = pytest.importorskip(
    "torch", reason="torch not installed (optional peer: pip install -e .[peers])"
)
from jaxseq.interop.torch import from_torch, to_torch  # noqa: E402

B, T, F, H = 3, 6, 4, 5
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "cell",
    [
        jaxseq.cells.lstm(H),
        jaxseq.cells.gru(H),
        jaxseq.cells.elman(H, activation="relu"),
    ],
    ids=["lstm", "gru", "rnn_relu"],
)
def test_to_torch_same_outputs_and_back(cell):
    layer = jaxseq.stack(cell, 2, bidirectional=True, dropout=0.25)
    params = jax.tree.map(lambda a: a + 0.1, layer.init(jax.random.key(0), F))
    module = to_torch(layer, params)
    assert module.batch_first and module.dropout == 0.25
    xs = np.array(jax.random.normal(jax.random.key(1), (B, T, F)))  # writable
    with torch.no_grad():
        ys_t = module.eval()(torch.from_numpy(xs))[0].numpy()
    _, ys = layer.apply(params, xs)
    np.testing.assert_allclose(ys, ys_t, **TOL)
    layer2, back = from_torch(module)
    assert layer2.dropout == 0.25
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_to_torch_refuses_what_torch_lacks():
    key = jax.random.key(0)
    cases = {
        "reverse=True": jaxseq.stack(jaxseq.cells.lstm(H), reverse=True),
        "merge='sum'": jaxseq.stack(
            jaxseq.cells.lstm(H), bidirectional=True, merge="sum"
        ),
        "one cell for every layer": jaxseq.stack(
            [jaxseq.cells.lstm(H), jaxseq.cells.gru(H)]
        ),
        "reset_after=True form": jaxseq.stack(jaxseq.cells.gru(H, reset_after=False)),
        "'tanh' or 'relu'": jaxseq.stack(jaxseq.cells.elman(H, activation="sigmoid")),
    }
    for message, layer in cases.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            to_torch(layer, layer.init(key, F))
