"""Train a registered model on labelled texts (the work behind ``jaxseq train
imdb`` and ``benchmarks/imdb.py``)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from .. import text
from ..train import (
    Checkpointing,
    EarlyStopping,
    Logging,
    bucket_by_length,
    bucket_lengths,
    fit,
    sortish_order,
    take,
)
from ._base import count_params
from .classifier import (
    LABEL_NAMES,
    RECIPES,
    Classifier,
    Features,
    Recipe,
    check_label_names,
    featurize,
    fit_vocabulary,
    loss_function,
    make_model,
    optimizer,
)

logger = logging.getLogger("jaxseq.models")


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes:
        classifier: the trained :class:`~jaxseq.models.Classifier` (the best
            validation epoch's parameters when the recipe has a ``patience``,
            else the last epoch's).
        history: :func:`jaxseq.train.fit`'s per-epoch records (``seconds`` is
            the epoch's training time, validation excluded).
        best_epoch: the 1-based epoch the parameters come from.
        stopped_early: whether early stopping ended the run.
        timings: seconds spent fitting the vocabulary (``vocabulary``) and
            vectorising the training and validation texts (``vectorize``; both
            absent from :func:`train_features`), and compiling: the first
            training step's wall time, compile included (``compile``; absent
            when no step ran, as in a rerun of a finished run).
        params: number of trainable parameters.
    """

    classifier: Classifier
    history: list[dict[str, Any]]
    best_epoch: int | None
    stopped_early: bool
    timings: dict[str, float]
    params: int


def _check_labels(name: str, labels: Any, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(
            f"{name}: expected shape ({n},) (one per text), got {labels.shape}."
        )
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(
            f"{name}: expected 0/1 labels, got values {np.unique(labels)[:5]}."
        )
    return labels.astype(np.float32)


def train(
    name: str,
    train_texts: Sequence[str],
    train_labels: Any,
    valid_texts: Sequence[str],
    valid_labels: Any,
    *,
    recipe: Recipe | None = None,
    vocab: text.Vocabulary | None = None,
    label_names: Sequence[str] = LABEL_NAMES,
    seed: int = 0,
    log_dir: str | os.PathLike[str] | None = None,
    title: str | None = None,
    progress: bool | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
) -> TrainResult:
    """Fit a vocabulary and train model ``name`` with early stopping on the
    validation accuracy.

    Args:
        name: a registered model (:func:`~jaxseq.models.names`).
        train_texts, train_labels: training reviews and 0/1 labels.
        valid_texts, valid_labels: validation reviews (model selection only;
            split by movie for IMDb: :func:`jaxseq.data.imdb.validation_split`).
        recipe: settings (default ``RECIPES[name]``).
        vocab: a fitted vocabulary to reuse (default: fit one on
            ``train_texts`` with the recipe's tokenizer).
        label_names: the names of label 0 and label 1, kept with the
            classifier (:attr:`jaxseq.data.Reviews.label_names` of your data;
            default IMDb's ``("neg", "pos")``).
        seed: seeds the parameters, dropout and the data order.
        log_dir: where :func:`jaxseq.train.fit` writes ``metrics.jsonl``,
            ``metrics.csv`` after every epoch and ``curves.png`` at most
            every 30 s and after the last one.
        title: the title of ``curves.png`` (default: the model's name and the
            numbers of training and validation texts).
        progress: ``True``/``False``: progress bar and status lines on or off;
            ``None``: the bar where a person watches, else plain lines
            (:func:`jaxseq.train.fit`).
        checkpoint_dir: Orbax checkpoints of the run there (``None``: none); a
            call with the same data, recipe and seed continues from the latest
            one (the vocabulary and features are recomputed, identically).
        checkpoint_every: steps between checkpoints (default: one per epoch).

    Returns:
        A :class:`TrainResult`.
    """
    recipe = RECIPES[name] if recipe is None else recipe
    label_names = check_label_names(label_names)
    y_train = _check_labels("train_labels", train_labels, len(train_texts))
    y_valid = _check_labels("valid_labels", valid_labels, len(valid_texts))
    tic = time.perf_counter()
    if vocab is None:
        vocab = fit_vocabulary(train_texts, recipe)
    timings = {"vocabulary": time.perf_counter() - tic}
    tic = time.perf_counter()
    f_train = featurize(vocab, recipe.inputs, train_texts, what="training texts")
    f_valid = featurize(vocab, recipe.inputs, valid_texts, what="validation texts")
    timings["vectorize"] = time.perf_counter() - tic
    result = train_features(
        name,
        vocab,
        f_train,
        y_train,
        f_valid,
        y_valid,
        recipe=recipe,
        label_names=label_names,
        seed=seed,
        log_dir=log_dir,
        title=title,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
    )
    return result._replace(timings={**timings, **result.timings})


def train_features(
    name: str,
    vocab: text.Vocabulary,
    f_train: Features,
    y_train: Any,
    f_valid: Features,
    y_valid: Any,
    *,
    recipe: Recipe | None = None,
    label_names: Sequence[str] = LABEL_NAMES,
    seed: int = 0,
    log_dir: str | os.PathLike[str] | None = None,
    title: str | None = None,
    progress: bool | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
) -> TrainResult:
    """:func:`train` on texts already featurised with ``vocab`` and
    ``recipe.inputs`` (to reuse one vectorisation for several models)."""
    recipe = RECIPES[name] if recipe is None else recipe
    label_names = check_label_names(label_names)
    y_train = _check_labels("train_labels", y_train, len(f_train.ids))
    y_valid = _check_labels("valid_labels", y_valid, len(f_valid.ids))
    model = make_model(name, vocab, recipe)
    k_init, k_fit = jax.random.split(jax.random.key(seed))
    params = model.init(k_init)
    if model.adapt is not None:
        params = model.adapt(params, f_train.ids, f_train.lengths, y_train)
    logger.info(
        "%s: %d parameters, vocabulary %d, %d training / %d validation texts",
        name,
        count_params(params),
        len(vocab),
        len(y_train),
        len(y_valid),
    )
    batch_size = min(recipe.batch_size, len(y_train))
    data = (f_train.ids, f_train.lengths, y_train)
    valid = (f_valid.ids, f_valid.lengths, y_valid) if len(y_valid) else None
    batching: dict[str, Any] = {}
    if recipe.bucketing:
        # batches of similar lengths trimmed to the smallest of four buckets
        # (quarters of maxlen) that holds them: one compile per bucket, about
        # as many recurrent steps as the reviews have tokens
        batching["batch_order"] = sortish_order(f_train.lengths, batch_size, seed=seed)
        batching["collate"] = bucket_by_length(bucket_lengths(f_train.ids.shape[1]))
        if valid is not None:  # evaluated in order: sorted, its batches bucket too
            valid = take(valid, np.argsort(f_valid.lengths, kind="stable"))
    per_epoch = len(y_train) // batch_size  # either order: only full batches
    left_out = len(y_train) - per_epoch * batch_size
    if left_out:
        logger.info(
            "%d of %d training examples sit out each epoch (incomplete batches; "
            "different ones every epoch)",
            left_out,
            len(y_train),
        )
    result = fit(
        loss_function(model),
        optimizer(recipe),
        params,
        data,
        key=k_fit,
        batch_size=batch_size,
        epochs=recipe.epochs,
        seed=seed,
        valid_data=valid,
        eval_batch_size=max(recipe.batch_size, 256),
        early_stopping=EarlyStopping(
            monitor="accuracy",
            mode="max",
            patience=recipe.patience,
            restore_best=recipe.patience is not None,
        ),
        logging=Logging(
            log_dir,
            title=title
            or f"{name}: {len(y_train):,} training / {len(y_valid):,} validation texts",
            progress=progress,
        ),
        checkpoint=None
        if checkpoint_dir is None
        else Checkpointing(checkpoint_dir, every=checkpoint_every or per_epoch),
        **batching,
    )
    params = jax.device_get(result.params)
    best = result.best_epoch if recipe.patience is not None else len(result.history)
    return TrainResult(
        classifier=Classifier(model, params, vocab, recipe.inputs, label_names),
        history=result.history,
        best_epoch=best,
        stopped_early=result.stopped_early,
        timings={}
        if result.compile_seconds is None
        else {"compile": result.compile_seconds},
        params=count_params(params),
    )
