"""Regenerate ``jaxseq/datasets/imdb_sample.jsonl.gz`` from the IMDb archive.

The sample is 2,000 training and 1,000 test reviews, half negative and half
positive in each split, drawn without replacement with a fixed seed from
``aclImdb_v1.tar.gz`` (or the labelled-only copy the project keeps at
``../shared/data/aclImdb_labeled.tar.gz``: both hold the same reviews).

File format (gzip-compressed JSON lines, UTF-8): the first line is a header
``{"format": "jaxseq.imdb_sample", "version": 1, "seed": ..., "counts": ...,
"source": ..., "citation": ...}``; every other line is one review
``{"split", "label", "review_id", "rating", "movie_id", "text"}`` with the text
exactly as :func:`jaxseq.data.imdb.load_archive` returns it. Lines are ordered
by split (train, test), label (neg, pos) and review id, the loader's order.

Usage::

    python benchmarks/make_imdb_sample.py [ARCHIVE] [--out PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from jaxseq.data import imdb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"
DEFAULT_OUT = ROOT / "jaxseq" / "datasets" / imdb.SAMPLE_FILE
SIZES = {"train": 2_000, "test": 1_000}
CITATION = (
    "Maas, Daly, Pham, Huang, Ng and Potts (2011). Learning Word Vectors for "
    "Sentiment Analysis. ACL 2011. http://ai.stanford.edu/~amaas/data/sentiment/"
)


def draw(reviews: imdb.Reviews, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size // 2`` random reviews of each label, in loader order."""
    picks = []
    for label in (0, 1):
        pool = np.flatnonzero(reviews.labels == label)
        picks.append(rng.choice(pool, size=size // 2, replace=False))
    return np.sort(np.concatenate(picks))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", nargs="?", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.archive.exists():
        print(f"make_imdb_sample: no archive at {args.archive}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    header = {
        "format": imdb.SAMPLE_FORMAT,
        "version": imdb.SAMPLE_VERSION,
        "seed": args.seed,
        "counts": SIZES,
        "source": f"{args.archive.name} (sha256 {sha256(args.archive)})",
        "citation": CITATION,
    }
    lines = [json.dumps(header)]
    for split, size in SIZES.items():
        reviews = imdb.load_archive(args.archive, split, errors="strict")
        for i in draw(reviews, size, rng).tolist():
            record = {
                "split": split,
                "label": int(reviews.labels[i]),
                "review_id": int(reviews.review_ids[i]),
                "rating": int(reviews.ratings[i]),
                "movie_id": int(reviews.movie_ids[i]),
                "text": reviews.texts[i],
            }
            lines.append(json.dumps(record, ensure_ascii=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the gzip bytes identical across runs with the same seed.
    with open(args.out, "wb") as raw:
        with gzip.GzipFile("", "wb", 9, raw, mtime=0) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
    size_kb = os.path.getsize(args.out) / 1024
    print(f"wrote {args.out} ({len(lines) - 1} reviews, {size_kb:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
