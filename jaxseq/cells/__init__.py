"""Recurrent cells as bundles of pure functions (``init``, ``init_carry``, ``step``).

==================  ====================================================  ==========
factory             parameters / carry                                    gate order
==================  ====================================================  ==========
``elman``           :class:`ElmanParams` / :class:`ElmanCarry`             (none)
``lstm``            :class:`LSTMParams` / :class:`LSTMCarry`               ``i f g o``
``gru``             :class:`GRUParams` / :class:`GRUCarry`                 ``r z n``
``layernorm_lstm``  :class:`LayerNormLSTMParams` / :class:`LSTMCarry`      ``i f g o``
``layernorm_gru``   :class:`LayerNormGRUParams` / :class:`GRUCarry`        ``r z n``
``peephole_lstm``   :class:`PeepholeLSTMParams` / :class:`LSTMCarry`       ``i f g o``
==================  ====================================================  ==========

Wrappers: :func:`recurrent_dropout` (one dropout mask per sequence) and
:func:`learned_init` (a learnable initial carry, :class:`LearnedInitParams`).

:data:`BY_NAME` maps each factory's name (the ``name`` its cells carry) to the
factory: the one table that model builders (``cell="gru"``), saved
configurations and command-line flags read.
"""

from types import MappingProxyType

from ._base import Cell
from ._dropout import (
    RecurrentDropoutCarry,
    dropout_carry,
    recurrent_dropout,
    recurrent_mask,
)
from ._elman import ElmanCarry, ElmanParams, elman
from ._gru import GATE_ORDER as GRU_GATE_ORDER
from ._gru import GRUCarry, GRUParams, gru
from ._layernorm import (
    LayerNormGRUParams,
    LayerNormLSTMParams,
    layer_norm,
    layernorm_gru,
    layernorm_lstm,
)
from ._learned import LearnedInitParams, learned_init
from ._lstm import GATE_ORDER as LSTM_GATE_ORDER
from ._lstm import LSTMCarry, LSTMParams, lstm
from ._peephole import PEEPHOLE_ORDER, PeepholeLSTMParams, peephole_lstm

#: name -> factory of every built-in cell (read-only); ``BY_NAME[c.name](c.hidden_size,
#: **dict(c.options))`` rebuilds a built-in cell ``c``.
BY_NAME = MappingProxyType(
    {
        f.__name__: f
        for f in (elman, lstm, gru, layernorm_lstm, layernorm_gru, peephole_lstm)
    }
)

__all__ = [
    "BY_NAME",
    "Cell",
    "ElmanCarry",
    "ElmanParams",
    "GRUCarry",
    "GRUParams",
    "GRU_GATE_ORDER",
    "LSTMCarry",
    "LSTMParams",
    "LSTM_GATE_ORDER",
    "LayerNormGRUParams",
    "LayerNormLSTMParams",
    "LearnedInitParams",
    "PEEPHOLE_ORDER",
    "PeepholeLSTMParams",
    "RecurrentDropoutCarry",
    "dropout_carry",
    "elman",
    "gru",
    "layer_norm",
    "layernorm_gru",
    "layernorm_lstm",
    "learned_init",
    "lstm",
    "peephole_lstm",
    "recurrent_dropout",
    "recurrent_mask",
]
