"""IMDb movie reviews (Large Movie Review Dataset v1.0) as NumPy arrays.

25,000 training and 25,000 test reviews of movies, labelled negative (rating
<= 4 of 10, label 0) or positive (rating >= 7, label 1), 12,500 of each per
split; train and test hold reviews of different movies (3,456 and 3,581 movies;
a single one, tt0406816, has reviews in both).

Terms: the data set is Maas et al. (2011), "Learning Word Vectors for Sentiment
Analysis", ACL 2011 (http://ai.stanford.edu/~amaas/data/sentiment/). Cite that
paper when you use it; the reviews are IMDb users' text, distributed by its
authors for research. The sample shipped with jaxseq is a subset of it.

Sources, all returning the same :class:`Reviews`:

- :func:`load_archive`: the Stanford layout, read directly from the original
  ``aclImdb_v1.tar.gz`` (or any tarball with the same layout) without
  extracting it, or from an extracted ``aclImdb`` directory. Offline and
  complete: it also gives review ids, ratings and movie ids.
- :func:`load_tfds`: tensorflow-datasets' ``imdb_reviews`` (extra
  ``jaxseq[data]``). It downloads the original archive itself, or takes it from
  a manual directory. Texts and labels only. :func:`check_tfds` says at once
  whether that can work here (prepared, or TensorFlow and the network).
- :func:`load_sample`: 3,000 real reviews shipped inside jaxseq (the default of
  demos and quick tests).

Texts are identical across sources: each review file's bytes with the leading
and trailing ASCII whitespace stripped (what tensorflow-datasets stores), then
decoded from UTF-8. HTML such as ``<br />`` is kept; the tokenizers in
:mod:`jaxseq.text` remove it.

Order: the archive and the sample give negative reviews, then positive ones,
each by increasing review id (the number before ``_`` in the file name, which
is also the line of the review's URL in ``urls_{neg,pos}.txt``).
tensorflow-datasets gives its own fixed, shuffled order, so compare the sources
as sets of ``(label, text)`` pairs.

Validation: :func:`validation_split` holds out whole movies (default) or random
reviews. IMDb's test set shares (almost) no movie with its training set, so a
split by movie is what makes validation accuracy track test accuracy.
"""

from __future__ import annotations

import gzip
import importlib.resources
import importlib.util
import json
import logging
import os
from typing import Any, Literal

import numpy as np

from ._probe import accepts_connection, probe_address
from ._reviews import LABEL_NAMES, Reviews, decode_texts, logger, report_empty
from ._split import group_split, random_split
from ._stanford import read_stanford

Split = Literal["train", "test"]
Errors = Literal["replace", "strict"]
SPLITS = ("train", "test")
SAMPLE_FILE = "imdb_sample.jsonl.gz"
SAMPLE_FORMAT = "jaxseq.imdb_sample"
SAMPLE_VERSION = 1

__all__ = [
    "LABEL_NAMES",
    "SPLITS",
    "Reviews",
    "check_tfds",
    "load",
    "load_archive",
    "load_sample",
    "load_tfds",
    "validation_split",
]


def load(
    split: Split, source: str | os.PathLike[str] = "sample", **kwargs: Any
) -> Reviews:
    """Load a split from ``source``: ``"sample"``, ``"tfds"``, or a path.

    A path goes to :func:`load_archive`, ``"tfds"`` to :func:`load_tfds` and
    ``"sample"`` to :func:`load_sample`; ``kwargs`` are passed on.

    Examples:
        >>> from jaxseq.data import imdb
        >>> train = imdb.load("train")  # the shipped sample
        >>> len(train), float(train.labels.mean())
        (2000, 0.5)
    """
    if source == "sample":
        return load_sample(split, **kwargs)
    if source == "tfds":
        return load_tfds(split, **kwargs)
    if isinstance(source, str | os.PathLike):
        return load_archive(source, split, **kwargs)
    raise TypeError(
        f"source: expected 'sample', 'tfds' or a path, got {type(source).__name__}."
    )


def load_archive(
    path: str | os.PathLike[str], split: Split, *, errors: Errors = "replace"
) -> Reviews:
    """One split from the Stanford layout, in a tarball or a directory.

    Args:
        path: ``aclImdb_v1.tar.gz`` (or another tar archive holding
            ``aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt`` and
            ``aclImdb/{train,test}/urls_{neg,pos}.txt``), the extracted
            ``aclImdb`` directory, or the directory that holds it.
        split: ``"train"`` or ``"test"``.
        errors: ``"replace"`` decodes invalid UTF-8 bytes as U+FFFD and logs how
            many reviews had any; ``"strict"`` raises instead.

    Completeness (refused with ``ValueError`` naming the file):

    - an archive must end where its writer ended it: the tar end-of-archive
      marker after the last member, and a compressed stream that reaches its
      end marker with a matching checksum (:func:`jaxseq.data.iter_archive`);
    - the split must hold both labels, and each review id once per label;
    - the full data set: a label whose ``urls_<label>.txt`` lists 12,500 URLs
      (the original's, one per review id) must hold all 12,500 reviews, ids
      ``0 .. 12,499``.

    A smaller data set in the same layout (say 500 reviews of each label) loads
    as it is: any counts with both labels, and ``urls_<label>.txt`` with one
    line per id up to its largest (line ``i`` is the movie of review ``i``),
    or left out (its reviews' movie ids are then -1, with a warning). A
    directory has no end marker: an extraction cut short is caught only by the
    label and full-set rules, so prefer loading the archive itself.

    Returns:
        :class:`Reviews`, negative then positive, by review id.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        TypeError: when ``path`` is not a path.
        ValueError: on a bad ``split`` or ``errors``; when the split holds no
            review or is incomplete (above); on invalid UTF-8 with
            ``errors="strict"``; and (as
            :class:`~jaxseq.data.UnsafeArchiveError` /
            :class:`~jaxseq.data.CorruptArchiveError`) for an archive with unsafe
            members or one that cannot be read.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path: expected a file or directory path, got {type(path).__name__}."
        )
    _check_split(split)
    _check_errors(errors)
    return read_stanford(os.fspath(path), split, errors)


def load_tfds(
    split: Split,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    manual_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    errors: Errors = "replace",
) -> Reviews:
    """One split of tensorflow-datasets' ``imdb_reviews`` (``plain_text``).

    Needs the ``jaxseq[data]`` extra. The first call prepares the data set in
    ``data_dir`` (default ``~/tensorflow_datasets``) in the ``array_record``
    format, which later calls read without TensorFlow. Preparing does need
    TensorFlow (tensorflow-datasets reads the archive through ``tf.io``): install
    ``tensorflow-cpu``, or read the archive with :func:`load_archive`, which is
    also the only way to get movie ids.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: tensorflow-datasets' data directory.
        manual_dir: a directory holding the original ``aclImdb_v1.tar.gz``; it
            is used instead of downloading (its checksum is still verified).
        download: download and prepare when not prepared yet; with ``False`` an
            unprepared data set raises ``FileNotFoundError``.
        errors: UTF-8 decoding policy, as in :func:`load_archive`.

    Returns:
        :class:`Reviews` in tensorflow-datasets' order; ``movie_ids``,
        ``review_ids`` and ``ratings`` are -1 (the data set does not keep them).

    Before preparing, :func:`check_tfds`'s checks run, so that a call that
    cannot succeed (no TensorFlow, no network) fails at once, not after minutes
    of download retries.

    Raises:
        ImportError: when tensorflow-datasets is missing, or TensorFlow is
            needed to prepare the data and is missing.
        FileNotFoundError: when ``download=False`` and the data set is not
            prepared in ``data_dir``, or ``manual_dir`` lacks the archive.
        ConnectionError: when the data set is not prepared, there is no
            ``manual_dir``, and the download host cannot be reached.
    """
    _check_split(split)
    _check_errors(errors)
    tfds = _import_tfds()
    _hide_gpus_from_tensorflow()
    prepare: dict[str, Any] = {}
    if manual_dir is not None:
        prepare["download_config"] = tfds.download.DownloadConfig(
            manual_dir=os.fspath(manual_dir)
        )
    data_dir = None if data_dir is None else os.fspath(data_dir)
    builder, prepared = _builder(tfds, data_dir)
    if not prepared:
        if not download:
            raise FileNotFoundError(
                f"load_tfds: imdb_reviews is not prepared in {builder.data_dir!r} "
                "and download=False. Pass download=True (with manual_dir= for a "
                "local aclImdb_v1.tar.gz), or read the archive with load_archive."
            )
        if (err := _cannot_prepare(builder.data_dir, manual_dir)) is not None:
            raise type(err)(f"load_tfds: {err} {_INSTEAD}") from None
    try:
        source = tfds.data_source(
            "imdb_reviews",
            split=split,
            data_dir=data_dir,
            download=download,
            builder_kwargs={"file_format": "array_record"},
            download_and_prepare_kwargs=prepare or None,
        )
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("tensorflow"):
            raise
        raise ImportError(
            "load_tfds: tensorflow-datasets needs TensorFlow to prepare "
            "imdb_reviews (pip install tensorflow-cpu). Without it, read the "
            "archive directly: jaxseq.data.imdb.load_archive('aclImdb_v1.tar.gz', "
            f"{split!r})."
        ) from err
    records = [source[i] for i in range(len(source))]
    raw = [_as_bytes(r["text"]) for r in records]
    names = [f"imdb_reviews/{split}[{i}]" for i in range(len(raw))]
    texts = decode_texts(raw, names, errors)
    report_empty(texts, "imdb_reviews", split)
    unknown = np.full(len(texts), -1, dtype=np.int32)
    return Reviews(
        texts=texts,
        labels=np.array([int(r["label"]) for r in records], dtype=np.int32),
        movie_ids=unknown,
        review_ids=unknown.copy(),
        ratings=unknown.copy(),
    )


def check_tfds(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    manual_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Fail at once when :func:`load_tfds` could neither read nor prepare
    ``imdb_reviews`` here, instead of minutes later.

    Returns when the data set is prepared in ``data_dir``, or can be prepared:
    TensorFlow is installed, and ``manual_dir`` holds ``aclImdb_v1.tar.gz`` or
    the download host (or the HTTP proxy of the environment) accepts a
    connection within :data:`PROBE_SECONDS`. Without this check an offline
    :func:`load_tfds` spends minutes in HTTP retries. It reads no data.

    Raises:
        ImportError: when tensorflow-datasets is missing, or the data set is not
            prepared and TensorFlow (needed to prepare it) is missing.
        FileNotFoundError: when ``manual_dir`` does not hold the archive.
        ConnectionError: when the data set is not prepared, there is no
            ``manual_dir``, and the download host cannot be reached.
    """
    if importlib.util.find_spec("tensorflow_datasets") is None:
        raise ImportError(
            "tensorflow-datasets is not installed (pip install 'jaxseq[data]')."
        )
    tfds = _import_tfds()
    data_dir = None if data_dir is None else os.fspath(data_dir)
    builder, prepared = _builder(tfds, data_dir)
    if not prepared:
        if (err := _cannot_prepare(builder.data_dir, manual_dir)) is not None:
            raise err


#: Where tensorflow-datasets downloads ``imdb_reviews`` from.
DOWNLOAD_URL = "http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
#: Seconds :func:`check_tfds` waits for the download host to accept a connection.
PROBE_SECONDS = 2.0
_INSTEAD = (
    "Instead, read the original archive with load_archive('aclImdb_v1.tar.gz', "
    "split), your own texts with jaxseq.data.labelled, or the shipped sample with "
    "load_sample(split)."
)


def _cannot_prepare(
    data_dir: Any, manual_dir: str | os.PathLike[str] | None
) -> Exception | None:
    """Why ``imdb_reviews`` (not prepared in ``data_dir``) cannot be prepared
    now, as the exception to raise; ``None`` when it can."""
    where = f"imdb_reviews is not prepared in {os.fspath(data_dir)!r}"
    if not _tensorflow_installed():
        return ImportError(
            f"{where}, and preparing it needs TensorFlow, which is not installed "
            "(pip install tensorflow-cpu)."
        )
    if manual_dir is not None:
        archive = os.path.join(os.fspath(manual_dir), "aclImdb_v1.tar.gz")
        if not os.path.isfile(archive):
            return FileNotFoundError(
                f"{where}, and manual_dir holds no {archive}; put the original "
                "archive there."
            )
        return None
    host, port = probe_address(DOWNLOAD_URL)
    if not accepts_connection(host, port, PROBE_SECONDS):
        return ConnectionError(
            f"{where}, and downloading it needs the network, but {host}:{port} "
            f"did not accept a connection within {PROBE_SECONDS:g} s (offline?)."
        )
    return None


def _builder(tfds: Any, data_dir: str | None) -> tuple[Any, bool]:
    """tensorflow-datasets' ``imdb_reviews`` builder and whether the data set is
    prepared, without tensorflow-datasets' warning that an unprepared folder has
    no ``dataset_info.json`` (the callers say so in their own words)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        builder = tfds.builder("imdb_reviews", data_dir=data_dir)
        return builder, builder.is_prepared()
    finally:
        absl.setLevel(level)


def _tensorflow_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, np.ndarray):
        value = value.item()
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _import_tfds() -> Any:
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ImportError(
            "load_tfds needs tensorflow-datasets: pip install 'jaxseq[data]'. "
            "Without it, read the archive with jaxseq.data.imdb.load_archive."
        ) from err
    return tfds


def _hide_gpus_from_tensorflow() -> None:
    """Keep TensorFlow (if installed; tensorflow-datasets may import it) off the
    GPUs, where it would reserve the memory JAX needs."""
    if importlib.util.find_spec("tensorflow") is None:
        return
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # devices already initialised: too late to hide them
        logger.warning("TensorFlow was initialised before jaxseq could hide GPUs.")


def load_sample(split: Split) -> Reviews:
    """The real IMDb sample shipped inside jaxseq (no download).

    2,000 training and 1,000 test reviews, half of each label, drawn with a fixed
    seed from the full data set by ``benchmarks/make_imdb_sample.py``; same
    fields, texts and order as :func:`load_archive` gives for them (movie ids
    included).
    """
    _check_split(split)
    resource = importlib.resources.files("jaxseq").joinpath("datasets", SAMPLE_FILE)
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        if (
            header.get("format") != SAMPLE_FORMAT
            or header.get("version") != SAMPLE_VERSION
        ):
            raise ValueError(
                f"{SAMPLE_FILE}: expected format {SAMPLE_FORMAT!r} version "
                f"{SAMPLE_VERSION}, got {header.get('format')!r} version "
                f"{header.get('version')!r}; reinstall jaxseq."
            )
        records = [r for r in map(json.loads, f) if r["split"] == split]
    return Reviews(
        texts=[r["text"] for r in records],
        labels=np.array([r["label"] for r in records], dtype=np.int32),
        movie_ids=np.array([r["movie_id"] for r in records], dtype=np.int32),
        review_ids=np.array([r["review_id"] for r in records], dtype=np.int32),
        ratings=np.array([r["rating"] for r in records], dtype=np.int32),
    )


def validation_split(
    reviews: Reviews,
    *,
    fraction: float = 0.2,
    by: Literal["movie", "random"] = "movie",
    seed: int = 0,
) -> tuple[Reviews, Reviews]:
    """Hold out part of a (training) split for validation.

    Args:
        reviews: usually ``load_archive(path, "train")``.
        fraction: target share of reviews in validation, in ``(0, 1)``.
        by: ``"movie"`` keeps all reviews of a movie on one side (whole movies
            are drawn until ``fraction`` is reached, so the share is
            approximate); ``"random"`` draws reviews uniformly, which puts reviews
            of the same movie on both sides and overstates accuracy.
        seed: seed of the draw.

    Returns:
        ``(train, valid)`` :class:`Reviews`, each in the input's order.

    Raises:
        TypeError: when ``reviews`` is not :class:`Reviews`.
        ValueError: with ``by="movie"`` when movie ids are unknown (-1), e.g.
            from :func:`load_tfds`; load the archive instead; on a bad ``by``,
            ``fraction`` or ``seed``.
    """
    if not isinstance(reviews, Reviews):
        raise TypeError(
            f"reviews: expected jaxseq.data.Reviews (from imdb.load), got "
            f"{type(reviews).__name__}."
        )
    if by == "movie":
        if (reviews.movie_ids < 0).any():
            raise ValueError(
                "validation_split: by='movie' needs movie ids, but "
                f"{int((reviews.movie_ids < 0).sum())} reviews have none (-1; "
                "tensorflow-datasets does not keep them). Load the split with "
                "load_archive, or pass by='random'."
            )
        train_idx, valid_idx = group_split(
            reviews.movie_ids, fraction=fraction, seed=seed
        )
    elif by == "random":
        train_idx, valid_idx = random_split(len(reviews), fraction=fraction, seed=seed)
    else:
        raise ValueError(f"by: expected 'movie' or 'random', got {by!r}.")
    return reviews.take(train_idx), reviews.take(valid_idx)


def _check_split(split: object) -> None:
    if split not in SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}.")


def _check_errors(errors: object) -> None:
    if errors not in ("replace", "strict"):
        raise ValueError(f"errors: expected 'replace' or 'strict', got {errors!r}.")
