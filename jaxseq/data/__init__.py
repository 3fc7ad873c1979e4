"""Data sets as NumPy arrays (host side), ready for :mod:`jaxseq.text`.

- :mod:`jaxseq.data.imdb`: IMDb movie reviews from the original archive, an
  extracted directory, tensorflow-datasets, or the sample shipped with jaxseq;
  validation split by movie.
- :mod:`jaxseq.data.labelled`: your own labelled texts, from a folder of class
  folders (:func:`load_folder`, Keras' ``text_dataset_from_directory`` layout)
  or a CSV file (:func:`load_csv`), as the same :class:`Reviews`.
- :func:`iter_archive`: stream files out of a tar archive, refusing unsafe
  members (:class:`UnsafeArchiveError`) and reporting unreadable archives
  (:class:`CorruptArchiveError`).
- :func:`group_split` / :func:`random_split`: index splits.

``tensorflow_datasets`` is imported only inside :func:`jaxseq.data.imdb.load_tfds`.
"""

from . import imdb, labelled
from ._archive import CorruptArchiveError, UnsafeArchiveError, iter_archive
from ._split import group_split, random_split
from .imdb import Reviews
from .labelled import load_csv, load_folder

__all__ = [
    "CorruptArchiveError",
    "Reviews",
    "UnsafeArchiveError",
    "group_split",
    "imdb",
    "iter_archive",
    "labelled",
    "load_csv",
    "load_folder",
    "random_split",
]
