"""Reading text files as UTF-8: the one decoder of jaxseq's text loaders (the
labelled CSV files of :mod:`jaxseq.data` and the plain texts of
:mod:`jaxseq.lm`)."""

from __future__ import annotations

import logging


def decode_utf8(raw: bytes, name: str, errors: str, logger: logging.Logger) -> str:
    """``raw`` decoded as UTF-8, a byte-order mark dropped.

    Args:
        raw: the file's bytes.
        name: the file's name for messages.
        errors: ``"strict"``: invalid bytes raise ``ValueError`` naming
            ``name:line`` and the byte; ``"replace"``: they become U+FFFD and
            one warning on ``logger`` counts the lines and names the first.
        logger: where the ``"replace"`` warning goes.

    Returns:
        The text (line ends as in the file).
    """
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        if errors == "strict":
            raise ValueError(
                f"{name}:{line}: expected UTF-8 text, got the byte "
                f"{raw[err.start]:#04x}; re-encode the file as UTF-8, or pass "
                "errors='replace' to read invalid bytes as U+FFFD."
            ) from None
    bad = 0
    for part in raw.split(b"\n"):
        try:
            part.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
    logger.warning(
        "%s: %d %s not valid UTF-8 (the first is line %d); their invalid bytes "
        "were read as U+FFFD (errors='replace')",
        name,
        bad,
        "line was" if bad == 1 else "lines were",
        line,
    )
    return raw.decode("utf-8", errors="replace")
