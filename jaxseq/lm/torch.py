"""Import a PyTorch language model: ``nn.Embedding`` + ``nn.LSTM/GRU/RNN`` +
``nn.Linear``, the ``RNNModel`` of PyTorch's word_language_model example.

torch is not imported here: the module's submodules are read through their
attributes and ``state_dict`` arrays (the recurrent part through
:func:`jaxseq.interop.torch.from_torch`). Layouts: the embedding table
``encoder.weight`` ``[V, D]`` is jaxseq's table as it is; the decoder's
``weight`` ``[V, H]`` is the transposed readout kernel and its ``bias`` the
readout bias. A decoder whose weight *is* the encoder's (``tie_weights``) gives a
tied jaxseq model.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ..interop.torch import from_torch
from .loss import Readout
from .models import LanguageModel, rnn_lm


def _array(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.asarray(t, np.float32)


def _sub(module: Any, name: str, what: str) -> Any:
    sub = getattr(module, name, None)
    if sub is None:
        raise ValueError(
            f"{name}: expected the {what} as attribute {name!r} of the "
            f"{type(module).__name__}, found none (pass the attribute's name)."
        )
    return sub


def from_torch_lm(
    module: Any,
    *,
    embedding: str = "encoder",
    rnn: str = "rnn",
    decoder: str = "decoder",
    dropout: float | None = None,
) -> tuple[LanguageModel, dict[str, Any]]:
    """A jaxseq :class:`~jaxseq.lm.LanguageModel` and parameters equal to a
    PyTorch RNN language model.

    Args:
        module: a ``torch.nn.Module`` with an embedding, a recurrent module and a
            linear decoder as attributes (PyTorch's ``RNNModel``).
        embedding, rnn, decoder: the attribute names.
        dropout: the jaxseq model's dropout rate; ``None``: ``module.drop.p`` when
            the module has a ``drop`` ``nn.Dropout`` (``RNNModel``), else 0.

    Returns:
        ``(lm, params)``: the same per-token log-probabilities as the module
        (float32 rounding) for the same inputs and initial state.

    Raises:
        ValueError: for a bidirectional recurrent module, mismatched sizes, or a
            missing attribute.
    """
    enc = _sub(module, embedding, "nn.Embedding")
    rec = _sub(module, rnn, "nn.LSTM/GRU/RNN")
    dec = _sub(module, decoder, "nn.Linear decoder")
    if getattr(rec, "bidirectional", False):
        raise ValueError(
            f"{rnn}.bidirectional: expected False (a language model reads left to "
            "right), got True."
        )
    layer, rnn_params = from_torch(rec)
    table = _array(enc.weight)
    w = _array(dec.weight)
    vocab, dim = table.shape
    hidden = layer.cells[0].hidden_size
    if w.shape != (vocab, hidden):
        raise ValueError(
            f"{decoder}.weight: expected shape ({vocab}, {hidden}) (vocabulary, "
            f"hidden), got {w.shape}."
        )
    tied = dec.weight is enc.weight
    b = _array(dec.bias) if getattr(dec, "bias", None) is not None else np.zeros(vocab)
    if dropout is None:
        drop = getattr(module, "drop", None)
        dropout = float(getattr(drop, "p", 0.0))
    model = rnn_lm(
        vocab,
        cell=layer.cells[0],
        embed_dim=dim,
        num_layers=len(layer.cells),
        tied=tied,
        dropout=dropout,
    )
    params = {
        "embed": jnp.asarray(table),
        "rnn": rnn_params,
        "out": Readout(
            w=None if tied else jnp.asarray(w.T), b=jnp.asarray(b, jnp.float32)
        ),
    }
    return model, params
