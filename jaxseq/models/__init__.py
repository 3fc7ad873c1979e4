"""Text classifiers on jaxseq: the seed's IMDb lab model, recurrent, convolutional,
transformer and bag-of-n-grams models, a registry by name, and the pipeline from
review texts to a trained, saved classifier.

>>> import jax, jax.numpy as jnp
>>> from jaxseq import models
>>> sorted(models.names())[:4]
['bigru', 'bilstm', 'bow', 'conv1d']
>>> model = models.build("bigru", vocab_size=100, hidden=8, embed_dim=8)
>>> params = model.init(jax.random.key(0))
>>> logits = model.apply(params, jnp.array([[4, 9, 2, 0]]), jnp.array([3]))
>>> logits.shape
(1,)

=================  ==========================================================
name               model
=================  ==========================================================
``lab``            the seed's Keras lab model: Embedding(V, 4) -> LSTM(4,
                   backwards) -> mean over valid steps -> Dense(4) -> Dense(1)
``elman``          Elman RNN classifier (embedding, RNN, mean+max pooling)
``gru``, ``lstm``  GRU / LSTM classifiers
``stacked_lstm``,  two stacked layers
``stacked_gru``
``bilstm``,        bidirectional layers
``bigru``
``conv1d``         Conv1D filters (widths 3, 5), max over valid steps
``transformer``    the "simple transformer": one encoder block from Flax's
                   attention modules, positional encoding, padding mask
``bow``            bag-of-n-grams logistic regression (the linear baseline)
=================  ==========================================================

Each model is a :class:`Model` ``(init, apply, config, adapt)`` of pure
functions; ``config`` rebuilds it (:func:`from_config`), which is how a saved
classifier is loaded.
"""

from . import bag, conv, recurrent, transformer
from ._base import (
    STATS,
    Model,
    build,
    count_params,
    from_config,
    names,
    options,
    register,
    summaries,
)
from .classifier import (
    RECIPES,
    Classifier,
    Features,
    InputSpec,
    Recipe,
    evaluate,
    featurize,
    fit_vocabulary,
    load,
    loss_function,
    optimizer,
    predict_logits,
    save,
)
from .recurrent import recurrent_classifier
from .training import TrainResult, train, train_features

__all__ = [
    "RECIPES",
    "STATS",
    "Classifier",
    "Features",
    "InputSpec",
    "Model",
    "Recipe",
    "TrainResult",
    "bag",
    "build",
    "conv",
    "count_params",
    "evaluate",
    "featurize",
    "fit_vocabulary",
    "from_config",
    "load",
    "loss_function",
    "names",
    "optimizer",
    "options",
    "predict_logits",
    "recurrent",
    "recurrent_classifier",
    "register",
    "save",
    "summaries",
    "train",
    "train_features",
    "transformer",
]
