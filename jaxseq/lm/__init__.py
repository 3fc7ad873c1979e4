"""Language models: next-token prediction, stateful truncated BPTT, generation.

==============  ==========================================================
module          contents
==============  ==========================================================
``loss``        per-step :func:`readout` (optionally tied), :func:`shift_targets`,
                :func:`sequence_nll`, :func:`sequence_cross_entropy`,
                :func:`perplexity`, :func:`bits_per_token`
``streams``     :func:`lm_vocabulary` (``<eos>`` at id 2), :func:`encode_stream`,
                :func:`batchify`, :func:`chunk_stream`, :func:`read_texts`,
                :func:`load_texts`
``reset``       :func:`resettable`: a cell whose carry resets at document starts
``models``      :class:`LanguageModel`, :func:`rnn_lm`, :func:`transformer_lm`,
                :class:`TorchInit` (PyTorch word_language_model's init)
``stateful``    :class:`StreamState`, :func:`make_stream_train_step`,
                :func:`evaluate_stream`, :func:`train_epochs`
``training``    :func:`fit_stream` (resumable runs: checkpoints with the carry
                and the data position), :class:`Checkpoints`,
                :func:`restore_stream`, :func:`plot_perplexity`
``generate``    :func:`sampling`, :func:`generate`, :func:`make_generator`,
                :func:`inverse_cdf_sample`
``kv_cache``    :func:`cached`: a transformer LM with a key/value cache
``ngram``       :func:`fit_kneser_ney`, :func:`kn_perplexity`: the count baseline
``transfer``    an LM's layers as a classifier's start (:func:`classifier_for`,
                :func:`transfer_params`, :func:`classifier_features`) and
                ULMFiT's fine-tuning (:class:`FineTuning`, :func:`fine_tuning`:
                discriminative rates, gradual unfreezing,
                :func:`slanted_triangular`)
``torch``       :func:`from_torch_lm`: PyTorch word_language_model ``RNNModel``
``cli``         the commands ``jaxseq train lm``, ``jaxseq generate``
                and ``jaxseq eval`` of LM runs (the last two in ``cli_generate``;
                the parser of ``train lm`` in ``cli_args``)
==============  ==========================================================

Guide: docs/lm.md.
"""

from .generate import (
    Generated,
    Sampling,
    filter_logits,
    generate,
    inverse_cdf_sample,
    make_generator,
    next_token,
    sampling,
)
from .kv_cache import KVCache, cached
from .loss import (
    Readout,
    bits_per_token,
    perplexity,
    readout,
    readout_init,
    sequence_cross_entropy,
    sequence_nll,
    shift_targets,
    token_log_probs,
)
from .models import (
    LanguageModel,
    TorchInit,
    Window,
    rnn_lm,
    sinusoid,
    transformer_lm,
)
from .ngram import KneserNey, fit_kneser_ney, kn_log_probs, kn_perplexity, kn_probs
from .reset import reset_carry, resettable, with_resets
from .stateful import (
    EpochResult,
    StreamState,
    chunk_loss,
    evaluate_stream,
    fresh_carry,
    init_stream_state,
    make_stream_eval_step,
    make_stream_train_step,
    stream_train_step_fn,
    train_epochs,
)
from .streams import (
    EOS_ID,
    EOS_TOKEN,
    Chunks,
    TokenStream,
    batchify,
    chunk_stream,
    encode_stream,
    lm_vocabulary,
    load_texts,
    read_texts,
)
from .training import (
    Checkpoints,
    StreamFit,
    fit_stream,
    plot_perplexity,
    restore_stream,
)
from .transfer import (
    FineTuning,
    SlantedTriangular,
    classifier_features,
    classifier_for,
    fine_tuning,
    layer_groups,
    pooled_features,
    slanted_triangular,
    transfer_params,
    with_boundary,
)

__all__ = [
    "EOS_ID",
    "EOS_TOKEN",
    "Checkpoints",
    "Chunks",
    "EpochResult",
    "Generated",
    "KVCache",
    "KneserNey",
    "LanguageModel",
    "Readout",
    "Sampling",
    "StreamFit",
    "StreamState",
    "TokenStream",
    "TorchInit",
    "Window",
    "batchify",
    "bits_per_token",
    "cached",
    "chunk_loss",
    "chunk_stream",
    "encode_stream",
    "evaluate_stream",
    "filter_logits",
    "fit_kneser_ney",
    "fit_stream",
    "fresh_carry",
    "generate",
    "init_stream_state",
    "kn_log_probs",
    "kn_perplexity",
    "kn_probs",
    "lm_vocabulary",
    "load_texts",
    "make_generator",
    "make_stream_eval_step",
    "make_stream_train_step",
    "inverse_cdf_sample",
    "next_token",
    "perplexity",
    "plot_perplexity",
    "read_texts",
    "readout",
    "readout_init",
    "reset_carry",
    "resettable",
    "restore_stream",
    "rnn_lm",
    "sampling",
    "sequence_cross_entropy",
    "sequence_nll",
    "shift_targets",
    "sinusoid",
    "stream_train_step_fn",
    "token_log_probs",
    "train_epochs",
    "transformer_lm",
    "with_resets",
    "FineTuning",
    "SlantedTriangular",
    "classifier_features",
    "classifier_for",
    "fine_tuning",
    "layer_groups",
    "pooled_features",
    "slanted_triangular",
    "transfer_params",
    "with_boundary",
]
