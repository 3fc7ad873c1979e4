"""Weight exchange with other frameworks. Each submodule reads plain mappings of
arrays and never imports its framework, so none of them is a dependency:
:mod:`jaxseq.interop.torch` (``torch.nn.LSTM/GRU/RNN``) and
:mod:`jaxseq.interop.flax` (``flax.linen`` cells)."""
