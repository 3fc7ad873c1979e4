"""Text pipeline: tokenise, build a vocabulary, vectorise, embed.

>>> from jaxseq import text
>>> tok = text.word_tokenizer()
>>> vocab = text.build_vocabulary(["A fine film.", "A dull film!"], tok, max_size=100)
>>> ids, lengths = text.vectorize(vocab, ["What a film<br />", ""], 5)
>>> ids.tolist(), lengths.tolist()
([[1, 2, 3, 0, 0], [0, 0, 0, 0, 0]], [3, 0])

- Tokenisers (:func:`word_tokenizer`, :func:`char_tokenizer`, n-grams through
  ``ngram_range``) are hashable, JSON-serialisable :class:`Tokenizer` configs.
- A :class:`Vocabulary` is fitted on training text only (:func:`build_vocabulary`),
  reserves id 0 for padding and id 1 for out-of-vocabulary tokens, carries its
  tokenizer, and is saved/loaded as JSON (:func:`save_vocabulary`,
  :func:`load_vocabulary`).
- :func:`vectorize` gives ``(ids [N, L] int32, lengths [N] int32)`` with explicit
  ``padding`` / ``truncating`` sides; :func:`one_hot`; :func:`bag_of_words`
  (counts, binary, TF-IDF; scipy CSR or dense).
- Embeddings: :func:`embedding_init` / :func:`embed` for a learned table,
  :func:`load_pretrained` for word2vec (text, binary) and GloVe files.

All data functions return NumPy arrays; only :func:`embedding_init` and
:func:`embed` are JAX functions.
"""

from ._bow import bag_of_words, count_matrix, idf
from ._embed import embed, embedding_init
from ._pretrained import Coverage, load_pretrained
from ._tokenize import (
    HTML_TAG,
    Tokenizer,
    char_tokenizer,
    ngrams,
    standardize,
    tokenize,
    tokenize_batch,
    tokenizer_from_dict,
    word_tokenizer,
)
from ._vectorize import decode, encode, one_hot, pad_sequences, vectorize
from ._vocab import (
    OOV_ID,
    OOV_TOKEN,
    PAD_ID,
    PAD_TOKEN,
    Vocabulary,
    build_vocabulary,
    load_vocabulary,
    save_vocabulary,
)

__all__ = [
    "HTML_TAG",
    "OOV_ID",
    "OOV_TOKEN",
    "PAD_ID",
    "PAD_TOKEN",
    "Coverage",
    "Tokenizer",
    "Vocabulary",
    "bag_of_words",
    "build_vocabulary",
    "char_tokenizer",
    "count_matrix",
    "decode",
    "embed",
    "embedding_init",
    "encode",
    "idf",
    "load_pretrained",
    "load_vocabulary",
    "ngrams",
    "one_hot",
    "pad_sequences",
    "save_vocabulary",
    "standardize",
    "tokenize",
    "tokenize_batch",
    "tokenizer_from_dict",
    "vectorize",
    "word_tokenizer",
]
