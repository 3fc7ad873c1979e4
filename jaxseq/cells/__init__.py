"""Recurrent cells as bundles of pure functions (``init``, ``init_carry``, ``step``).

=========  =============================================  ==================
factory    parameters / carry                             gate order
=========  =============================================  ==================
``elman``  :class:`ElmanParams` / :class:`ElmanCarry`      (none)
``lstm``   :class:`LSTMParams` / :class:`LSTMCarry`        ``i f g o``
``gru``    :class:`GRUParams` / :class:`GRUCarry`          ``r z n``
=========  =============================================  ==================
"""

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
from ._lstm import GATE_ORDER as LSTM_GATE_ORDER
from ._lstm import LSTMCarry, LSTMParams, lstm

__all__ = [
    "Cell",
    "ElmanCarry",
    "ElmanParams",
    "GRUCarry",
    "GRUParams",
    "GRU_GATE_ORDER",
    "LSTMCarry",
    "LSTMParams",
    "LSTM_GATE_ORDER",
    "RecurrentDropoutCarry",
    "dropout_carry",
    "elman",
    "gru",
    "lstm",
    "recurrent_dropout",
    "recurrent_mask",
]
