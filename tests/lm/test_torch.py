"""A PyTorch word_language_model ``RNNModel`` imported into jaxseq gives the same
per-token log-probabilities (1e-5) and the same greedy continuation. torch is an
optional peer: skipped without it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq import lm
from jaxseq.lm.torch import from_torch_lm

torch = pytest.importorskip("torch")
nn = torch.nn

V, D, LAYERS = 17, 6, 2


class RNNModel(nn.Module):
    """PyTorch's examples/word_language_model/model.py RNNModel (its layers and
    forward; weights initialised by PyTorch, then perturbed)."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.2, tie=False):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity,
                              dropout=dropout)  # fmt: skip
        self.decoder = nn.Linear(nhid, ntoken)
        if tie:
            self.decoder.weight = self.encoder.weight

    def forward(self, input, hidden):  # input [T, B]
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.decoder.out_features)
        return torch.log_softmax(decoded, dim=1), hidden


CASES = [("LSTM", True), ("GRU", False), ("RNN_TANH", False)]


def _module(rnn_type, tie):
    torch.manual_seed(0)
    model = RNNModel(rnn_type, V, D, D, LAYERS, tie=tie)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))  # biases are non-zero
    return model.eval()


@pytest.mark.parametrize(("rnn_type", "tie"), CASES)
def test_same_log_probs_and_greedy_continuation(rnn_type, tie):
    module = _module(rnn_type, tie)
    model, params = from_torch_lm(module)
    assert model.config["tied"] is tie and model.config["dropout"] == 0.2
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, size=(3, 9)).astype(np.int64)
    with torch.no_grad():
        logp_t, _ = module(torch.from_numpy(ids.T.copy()), None)
    logp_t = logp_t.numpy().reshape(9, 3, V).transpose(1, 0, 2)
    _, logits = jax.jit(model.apply)(params, model.init_carry(params, 3),
                                     jnp.asarray(ids, jnp.int32))  # fmt: skip
    np.testing.assert_allclose(jax.nn.log_softmax(logits), logp_t, atol=1e-5)

    # greedy continuation, PyTorch's generate.py style: one token per Python step
    prompt, steps = ids[0, :5], 8
    with torch.no_grad():
        out, hidden = module(torch.from_numpy(prompt[:, None].copy()), None)
        tokens = []
        for _ in range(steps):
            tok = int(out[-1].argmax())
            tokens.append(tok)
            out, hidden = module(torch.tensor([[tok]]), hidden)
    got = lm.generate(model, params, jax.random.key(0), prompt.astype(np.int32),
                      max_new_tokens=steps)  # fmt: skip
    assert np.asarray(got.tokens[0]).tolist() == tokens


def test_refuses_bidirectional():
    module = _module("GRU", False)
    module.rnn = nn.GRU(D, D, 1, bidirectional=True)
    with pytest.raises(ValueError, match="rnn.bidirectional: expected False"):
        from_torch_lm(module)
