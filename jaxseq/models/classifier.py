"""From review texts to a trained, saved classifier and back.

- :class:`InputSpec`: how texts become ``(ids, lengths)``: the sequence length,
  which end of a long review is kept, and whether ids are kept once per review
  (the bag-of-n-grams model's set of n-grams).
- :func:`featurize`: texts -> :class:`Features`, logging how many reviews were
  truncated or had no token (nothing is dropped: an empty text is a row of
  length 0).
- :class:`Recipe` / :data:`RECIPES`: the tokenizer, vocabulary, input and
  training settings of each registered model (what ``jaxseq train imdb`` and
  ``benchmarks/imdb.py`` use).
- :func:`train`: fit a vocabulary on the training texts, then the model with
  :func:`jaxseq.train.fit` (Adam, binary cross-entropy, early stopping on the
  validation accuracy, metrics files and curves).
- :meth:`Classifier.predict` (texts -> :class:`Predictions`: probabilities and
  labels), :func:`predict_logits`, :func:`evaluate`; :func:`save` /
  :func:`load` through :mod:`jaxseq.io` (configuration, parameters and
  vocabulary; no pickle). :func:`load` also takes a run directory (the
  ``model/`` that ``jaxseq train`` and ``jaxseq demo`` write inside it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import io as jio
from .. import text
from ._base import STATS, Model, build, from_config

logger = logging.getLogger("jaxseq.models")

#: Written into a saved classifier's config; :func:`load` refuses other values.
CLASSIFIER_FORMAT = "jaxseq.models.classifier"
TRUNCATING = ("pre", "post")


class InputSpec(NamedTuple):
    """How texts become model inputs.

    Attributes:
        maxlen: ``T``, the number of ids kept per review.
        truncating: ``"pre"`` keeps a long review's last ``maxlen`` tokens (Keras'
            ``pad_sequences`` default; reviews tend to end with the verdict),
            ``"post"`` its first ones. Padding is always at the end, with the
            lengths passed to the model.
        unique: keep each id once per review (sorted): the set of n-grams, for
            the ``"bow"`` model.
    """

    maxlen: int = 400
    truncating: str = "pre"
    unique: bool = False


class Features(NamedTuple):
    """Model inputs for ``N`` texts.

    Attributes:
        ids: int32 ``[N, maxlen]``, right-padded with 0.
        lengths: int32 ``[N]``, ids kept per text.
        truncated: how many texts had more than ``maxlen`` ids.
        empty: how many texts gave no id at all.
    """

    ids: np.ndarray
    lengths: np.ndarray
    truncated: int
    empty: int


class Recipe(NamedTuple):
    """Everything needed to train one registered model from texts.

    Attributes:
        ngram_range: the word tokenizer's n-gram sizes.
        max_tokens: vocabulary size, the padding and out-of-vocabulary ids
            included (``build_vocabulary(max_size=...)``).
        min_freq: least number of occurrences for a token to enter the
            vocabulary.
        inputs: the :class:`InputSpec`.
        epochs: most epochs; ``patience`` may stop earlier.
        batch_size: examples per update.
        learning_rate: Adam's step size (Adam's epsilon is Keras' ``1e-7``).
        weight_decay: decoupled weight decay (``optax.adamw``), 0 for plain Adam.
        clip_norm: global-norm gradient clipping, or ``None``.
        patience: epochs without a better validation accuracy before stopping
            (``None``: train all epochs and keep the last parameters).
        bucketing: draw batches of reviews of similar length and trim each to
            the smallest of 4 bucket lengths (quarters of ``maxlen``) that holds
            it (fewer padded steps); ``False`` uses :func:`jaxseq.train.fit`'s
            uniformly random batches over the full ``maxlen``.
        options: model options passed to :func:`~jaxseq.models.build`.
    """

    ngram_range: tuple[int, int] = (1, 1)
    max_tokens: int | None = 20_000
    min_freq: int = 1
    inputs: InputSpec = InputSpec()
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    patience: int | None = 2
    bucketing: bool = True
    options: Mapping[str, Any] = MappingProxyType({})  # read-only: shared default


#: The lab model as in the seed: vocabulary 10,000, Adam, 25 epochs, batch 512.
_LAB = Recipe(
    max_tokens=10_000, epochs=25, batch_size=512, clip_norm=None, patience=None
)
#: Recurrent models overfit IMDb after two or three epochs: stop early.
_RNN = Recipe(epochs=5, patience=1)
#: name -> default :class:`Recipe` (override fields with ``Recipe._replace``).
#: These are the settings of ``benchmarks/imdb.py``.
RECIPES: dict[str, Recipe] = {
    "lab": _LAB,
    "elman": _RNN,
    "gru": _RNN,
    "lstm": _RNN,
    "stacked_lstm": _RNN,
    "stacked_gru": _RNN,
    "bilstm": _RNN,
    "bigru": _RNN,
    "conv1d": Recipe(epochs=5, patience=1),
    "transformer": Recipe(learning_rate=5e-4, epochs=4, patience=1),
    "bow": Recipe(
        ngram_range=(1, 2),
        max_tokens=None,
        min_freq=2,
        inputs=InputSpec(maxlen=2048, unique=True),
        epochs=8,
        patience=2,
        clip_norm=None,
    ),
}


#: The class names of a classifier saved without them (IMDb's: label 0 is
#: "neg", 1 is "pos").
LABEL_NAMES = ("neg", "pos")


class Predictions(NamedTuple):
    """What :meth:`Classifier.predict` returns for ``N`` texts.

    Attributes:
        probability: float32 ``[N]``, the probability of label 1 (the class
            ``label_names[1]``: "pos" for IMDb), ``sigmoid(logit)``.
        label: int32 ``[N]``, 1 where ``probability > threshold``, else 0.
        label_name: the ``N`` class names of ``label``
            (``Classifier.label_names[label]``).
    """

    probability: np.ndarray
    label: np.ndarray
    label_name: list[str]


class Classifier(NamedTuple):
    """A trained text classifier: model, parameters, vocabulary, inputs and
    the names of its two classes (label 0, label 1)."""

    model: Model
    params: Any
    vocab: text.Vocabulary
    inputs: InputSpec
    label_names: tuple[str, str] = LABEL_NAMES

    def predict(
        self, texts: Sequence[str], *, threshold: float = 0.5, batch_size: int = 256
    ) -> Predictions:
        """Probabilities and labels for raw ``texts``.

        Texts are featurised as the classifier was trained (vocabulary,
        ``maxlen``, truncation); a text with no known token gets the model's
        prediction for an empty input (counted in the log).

        Args:
            texts: ``N`` strings (a single ``str`` is refused: pass ``[text]``).
            threshold: label 1 where the probability exceeds it, in ``[0, 1]``.
            batch_size: texts per batch of the jitted model.

        Returns:
            :class:`Predictions` ``(probability [N], label [N], label_name)``.

        Examples:
            >>> from jaxseq import models  # doctest: +SKIP
            >>> clf = models.load("runs/demo-lab")  # doctest: +SKIP
            >>> clf.predict(["What a film!", "Dull."]).probability  # doctest: +SKIP
            array([0.93, 0.12], dtype=float32)
        """
        if isinstance(texts, str):
            raise TypeError(
                f"texts: expected a sequence of strings, got one str "
                f"({texts[:30]!r}); pass [text]."
            )
        if isinstance(threshold, bool) or not (
            isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0
        ):
            raise ValueError(
                f"threshold: expected a number in [0, 1], got {threshold!r}."
            )
        features = featurize(self.vocab, self.inputs, list(texts), what="texts")
        logits = predict_logits(
            self.model, self.params, features, batch_size=batch_size
        )
        probability = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(
            np.float32
        )
        label = (probability > threshold).astype(np.int32)
        return Predictions(
            probability, label, [self.label_names[i] for i in label.tolist()]
        )


def fit_vocabulary(texts: Sequence[str], recipe: Recipe) -> text.Vocabulary:
    """The recipe's vocabulary, fitted on (training) ``texts`` only."""
    tokenizer = text.word_tokenizer(ngram_range=tuple(recipe.ngram_range))
    return text.build_vocabulary(
        texts, tokenizer, max_size=recipe.max_tokens, min_freq=recipe.min_freq
    )


def featurize(
    vocab: text.Vocabulary,
    inputs: InputSpec,
    texts: Sequence[str],
    *,
    what: str = "texts",
) -> Features:
    """Tokenise, look up and pad ``texts`` as ``inputs`` says.

    Truncated and empty texts are counted and logged (logger
    ``jaxseq.models``), never dropped.

    Args:
        vocab: the fitted vocabulary.
        inputs: the :class:`InputSpec`.
        texts: ``N`` strings.
        what: how to call the texts in the log message.

    Returns:
        :class:`Features`.

    Examples:
        >>> from jaxseq import text
        >>> from jaxseq.models import InputSpec, featurize
        >>> vocab = text.build_vocabulary(["a good film", "a bad film"],
        ...                               text.word_tokenizer())
        >>> f = featurize(vocab, InputSpec(maxlen=3), ["a good good film", ""])
        >>> f.ids.tolist(), f.lengths.tolist(), f.truncated, f.empty
        ([[5, 5, 3], [0, 0, 0]], [3, 0], 1, 1)
    """
    if inputs.truncating not in TRUNCATING:
        raise ValueError(
            f"truncating: expected 'pre' or 'post', got {inputs.truncating!r}."
        )
    sequences = text.encode(vocab, texts)
    if inputs.unique:
        sequences = [np.unique(s) for s in sequences]
    sizes = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    ids, lengths = text.pad_sequences(
        sequences, inputs.maxlen, padding="post", truncating=inputs.truncating
    )
    truncated, empty = int((sizes > inputs.maxlen).sum()), int((sizes == 0).sum())
    if truncated:
        kept = "last" if inputs.truncating == "pre" else "first"
        logger.info(
            "%s: %d of %d longer than %d ids were truncated (kept the %s %d)",
            what,
            truncated,
            len(sizes),
            inputs.maxlen,
            kept,
            inputs.maxlen,
        )
    if empty:
        logger.warning(
            "%s: %d of %d gave no token; kept as length-0 inputs",
            what,
            empty,
            len(sizes),
        )
    return Features(ids, lengths, truncated, empty)


def optimizer(recipe: Recipe) -> optax.GradientTransformation:
    """Adam (or AdamW), optionally clipped; ``params["stats"]`` is frozen."""
    if recipe.weight_decay:
        opt = optax.adamw(
            recipe.learning_rate, eps=1e-7, weight_decay=recipe.weight_decay
        )
    else:
        opt = optax.adam(recipe.learning_rate, eps=1e-7)
    if recipe.clip_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(recipe.clip_norm), opt)

    def labels(params: Any) -> Any:
        if not isinstance(params, dict):
            return jax.tree.map(lambda _: "train", params)
        return {
            k: jax.tree.map(lambda _, k=k: "frozen" if k == STATS else "train", v)
            for k, v in params.items()
        }

    return optax.multi_transform({"train": opt, "frozen": optax.set_to_zero()}, labels)


def loss_function(model: Model):
    """``loss_fn(params, (ids, lengths, labels), key) -> (loss, {"accuracy"})``:
    mean binary cross-entropy of the logits."""

    def loss_fn(params: Any, batch: Any, key: jax.Array | None):
        ids, lengths, labels = batch
        logits = model.apply(params, ids, lengths, key=key)
        labels = labels.astype(logits.dtype)
        loss = optax.sigmoid_binary_cross_entropy(logits, labels).mean()
        accuracy = ((logits > 0) == (labels > 0.5)).mean()
        return loss, {"accuracy": accuracy}

    return loss_fn


def predict_logits(
    model: Model, params: Any, features: Features, *, batch_size: int = 256
) -> np.ndarray:
    """Logits ``[N]`` in batches. Rows are grouped by length so that each batch
    is trimmed to a few padded lengths (one compile each, less padded work)."""
    ids, lengths = features.ids, features.lengths
    n, maxlen = ids.shape
    out = np.zeros(n, np.float32)
    if n == 0:
        return out
    apply = _jitted_apply(model)
    order = np.argsort(lengths, kind="stable")
    buckets = sorted(
        {maxlen, *(maxlen * k // 8 for k in range(1, 8) if maxlen * k // 8)}
    )
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        longest = max(int(lengths[idx].max()), 1)
        width = next(b for b in buckets if b >= longest)
        rows = np.zeros((batch_size, width), np.int32)
        rows[: len(idx)] = ids[idx, :width]
        lens = np.zeros(batch_size, np.int32)
        lens[: len(idx)] = lengths[idx]
        out[idx] = np.asarray(apply(params, rows, lens))[: len(idx)]
    return out


#: The last model's jitted ``apply`` (holding ``model.apply`` itself, so a
#: later model can never be mistaken for it).
_APPLY_CACHE: list[Any] = [None, None]


def _jitted_apply(model: Model):
    if _APPLY_CACHE[0] is not model.apply:
        _APPLY_CACHE[:] = [model.apply, jax.jit(lambda p, i, n: model.apply(p, i, n))]
    return _APPLY_CACHE[1]


def evaluate(
    clf: Classifier, texts: Sequence[str], labels: np.ndarray
) -> dict[str, float]:
    """Accuracy and mean binary cross-entropy of ``clf`` on labelled texts."""
    features = featurize(clf.vocab, clf.inputs, texts, what="evaluation texts")
    logits = predict_logits(clf.model, clf.params, features)
    labels = np.asarray(labels)
    loss = optax.sigmoid_binary_cross_entropy(
        jnp.asarray(logits), labels.astype(np.float32)
    )
    return {
        "accuracy": float(((logits > 0) == (labels > 0.5)).mean()),
        "loss": float(loss.mean()),
        "count": len(labels),
    }


def make_model(name: str, vocab: text.Vocabulary, recipe: Recipe) -> Model:
    """``build(name, vocab_size=len(vocab), **recipe.options)``."""
    return build(name, vocab_size=len(vocab), **dict(recipe.options))


def save(
    path: str | os.PathLike[str],
    clf: Classifier,
    *,
    extra: dict | None = None,
    overwrite: bool = False,
) -> None:
    """Save ``clf`` as a :mod:`jaxseq.io` model directory: ``jaxseq.json`` holds
    ``{"format", "model": model.config, "inputs": {...}, "label_names": [...]}``,
    ``params.npz`` the parameters and ``vocab.json`` the vocabulary."""
    config = {
        "format": CLASSIFIER_FORMAT,
        "model": clf.model.config,
        "inputs": clf.inputs._asdict(),
        "label_names": list(check_label_names(clf.label_names)),
    }
    params = jax.device_get(clf.params)
    jio.save(
        path,
        config=config,
        params=params,
        vocab=clf.vocab,
        extra=extra,
        overwrite=overwrite,
    )


def model_dir(path: str | os.PathLike[str]) -> str:
    """The saved model in ``path``: ``path`` itself when it holds one
    (``jaxseq.json``), else its ``model/`` (a run directory of ``jaxseq train``
    or ``jaxseq demo``).

    Raises:
        FileNotFoundError: neither holds a saved model.
    """
    path = os.fspath(path)
    for candidate in (path, os.path.join(path, "model")):
        if os.path.isfile(os.path.join(candidate, jio.CONFIG_FILE)):
            return candidate
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such directory.")
    raise FileNotFoundError(
        f"{path}: expected a saved model (a directory with {jio.CONFIG_FILE}) or a "
        f"run directory with one in model/, got neither."
    )


def load(path: str | os.PathLike[str]) -> Classifier:
    """Load a classifier written by :func:`save`, checking that its vocabulary,
    configuration and parameters agree.

    Args:
        path: the saved model's directory, or a run directory holding it in
            ``model/`` (:func:`model_dir`).

    Raises:
        FileNotFoundError: ``path`` holds no saved model.
        ValueError: not a saved classifier, a corrupt file, or a vocabulary or
            parameter shape that does not match the model's configuration.
    """
    path = model_dir(path)
    saved = jio.load(path)
    config = saved.config
    if config.get("format") != CLASSIFIER_FORMAT:
        raise ValueError(
            f"{os.fspath(path)}: expected a saved text classifier (config format "
            f"{CLASSIFIER_FORMAT!r}), got format {config.get('format')!r}."
        )
    model = from_config(config["model"])
    vocab = saved.vocab
    if not isinstance(vocab, text.Vocabulary):
        raise ValueError(
            f"{os.fspath(path)}: expected a saved jaxseq vocabulary, got none."
        )
    if len(vocab) != model.vocab_size:
        raise ValueError(
            f"{os.fspath(path)}: vocabulary/model mismatch: {jio.VOCAB_FILE} holds "
            f"{len(vocab)} tokens but the model was built for vocab_size="
            f"{model.vocab_size}. Save the vocabulary the model was trained with."
        )
    like = jax.eval_shape(model.init, jax.random.key(0))
    try:
        jio.check_like(saved.params, like)
    except ValueError as err:
        raise ValueError(
            f"{os.fspath(path)}: parameters do not match the model ({err})"
        ) from err
    inputs = InputSpec(**config["inputs"])
    try:  # saved before class names were kept: IMDb's
        names = check_label_names(config.get("label_names", LABEL_NAMES))
    except ValueError as err:
        raise ValueError(f"{os.fspath(path)}: {jio.CONFIG_FILE}: {err}") from err
    return Classifier(model, saved.params, vocab, inputs, names)


def check_label_names(names: Any, what: str = "label_names") -> tuple[str, str]:
    """``names`` as a tuple of two distinct non-empty strings (label 0, label 1).

    Raises:
        ValueError: naming ``what``, for anything else.
    """
    if (
        isinstance(names, str)
        or not isinstance(names, Sequence)
        or len(names) != 2
        or not all(isinstance(n, str) and n for n in names)
        or names[0] == names[1]
    ):
        raise ValueError(
            f"{what}: expected two distinct non-empty class names (label 0, "
            f"label 1), got {names!r}."
        )
    return (names[0], names[1])
