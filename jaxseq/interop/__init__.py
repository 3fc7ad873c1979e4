"""Weight exchange with other frameworks. Each submodule reads plain mappings of
arrays and never imports its framework at module level, so none of them is a
dependency: :mod:`jaxseq.interop.torch` (``torch.nn.LSTM/GRU/RNN``),
:mod:`jaxseq.interop.keras` (Keras 3 ``LSTM/GRU/SimpleRNN/Bidirectional``) and
:mod:`jaxseq.interop.flax` (``flax.linen`` cells)."""
