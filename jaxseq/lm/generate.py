"""Text generation: greedy, temperature, top-k and top-p (nucleus) sampling.

The whole loop is one compiled program: the prompt is read in one call of the
model (priming), then a ``lax.scan`` over ``max_new_tokens`` steps draws a token
from the last logits and feeds it back. No Python loop per token, and one
compilation per (batch, padded prompt length): prompts of any lengths up to that
size share it.

Prompts come as a padded batch ``[B, P]`` with ``lengths`` ``[B]``, right-padded
(valid tokens first) or left-padded (valid tokens last). Inside, each row is
moved to the right end and the model's carry is reset (``resets``) at its first
real token, so the padding never influences the continuation.

Sampling (in this order, as Hugging Face's ``generate``): logits divided by
``temperature``; all but the ``top_k`` largest set to ``-inf``; all but the
smallest set of most likely tokens whose probability reaches ``top_p`` set to
``-inf`` (Holtzman et al., 2020, "The Curious Case of Neural Text
Degeneration"); then one draw from the softmax with an explicit key, by
inversion of the cumulative distribution (one uniform per draw,
:func:`inverse_cdf_sample`). ``greedy`` takes the argmax instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._weakcache import weak_cache
from ._checks import check_ids, check_positive
from .models import LanguageModel

Padding = Literal["right", "left"]


class Sampling(NamedTuple):
    """How the next token is chosen (build with :func:`sampling`, which checks).

    Attributes:
        greedy: take the most likely token (the other fields are then unused).
        temperature: logits are divided by it (> 0).
        top_k: keep the ``k`` most likely tokens (``None``: all).
        top_p: keep the smallest set of most likely tokens whose total
            probability is at least ``top_p`` (``None`` or 1: all).
    """

    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None


def sampling(
    *,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Sampling:
    """A checked :class:`Sampling` configuration.

    Raises:
        ValueError: ``temperature <= 0`` when sampling, ``top_k < 1``, ``top_p``
            outside ``(0, 1]``.
    """
    t = float(temperature)
    if not greedy and not (np.isfinite(t) and t > 0.0):
        raise ValueError(
            f"temperature: expected a finite value > 0 when sampling (use "
            f"greedy=True for argmax decoding), got {temperature!r}."
        )
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1
    ):
        raise ValueError(f"top_k: expected None or an int >= 1, got {top_k!r}.")
    if top_p is not None and not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top_p: expected None or a value in (0, 1], got {top_p!r}.")
    return Sampling(
        bool(greedy),
        t,
        None if top_k is None else int(top_k),
        None if top_p is None else float(top_p),
    )


def filter_logits(logits: jax.Array, config: Sampling) -> jax.Array:
    """Logits ``[..., V]`` after temperature, top-k and top-p: the candidates
    keep their (scaled) logits, every other token gets ``-inf``.

    Raises:
        ValueError: when ``top_k`` exceeds the vocabulary size ``V``.
    """
    vocab = logits.shape[-1]
    if config.top_k is not None and config.top_k > vocab:
        raise ValueError(
            f"top_k: expected at most the vocabulary size {vocab}, got {config.top_k}."
        )
    x = logits.astype(jnp.float32) / config.temperature
    neg = jnp.full_like(x, -jnp.inf)
    if config.top_k is not None and config.top_k < vocab:
        kth = jax.lax.top_k(x, config.top_k)[0][..., -1:]
        x = jnp.where(x >= kth, x, neg)
    if config.top_p is not None and config.top_p < 1.0:
        ranked = -jnp.sort(-x, axis=-1)  # descending
        probs = jax.nn.softmax(ranked, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the more likely ones
        kept = jnp.sum(before < config.top_p, axis=-1, keepdims=True)  # >= 1
        cut = jnp.take_along_axis(ranked, kept - 1, axis=-1)
        x = jnp.where(x >= cut, x, neg)
    return x


def inverse_cdf_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """One draw per row from ``softmax(logits)`` ``[..., V]`` by inversion: one
    uniform ``u`` per row, scaled by the total mass, and the first token whose
    cumulative probability exceeds it. A token of probability 0 (logit
    ``-inf``) is never drawn.

    Gumbel-max (``jax.random.categorical``) needs ``V`` random numbers (and two
    logarithms each) per draw, this one: on a CPU at ``V = 10,000`` that is
    most of a generated token's sampling cost. Same distribution, other draws
    for the same key.
    """
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    cdf = jnp.cumsum(probs, axis=-1)
    u = jax.random.uniform(key, logits.shape[:-1]) * cdf[..., -1]
    idx = jnp.sum(cdf <= u[..., None], axis=-1, dtype=jnp.int32)
    # rounding can put u at the very top: fall back to the last possible token
    vocab = logits.shape[-1]
    last = vocab - 1 - jnp.argmax(jnp.flip(probs > 0, axis=-1), axis=-1)
    return jnp.minimum(idx, last.astype(jnp.int32))


def next_token(key: jax.Array, logits: jax.Array, config: Sampling) -> jax.Array:
    """Token ids ``[...]`` drawn from ``logits`` ``[..., V]`` (argmax if greedy;
    else :func:`filter_logits`, then :func:`inverse_cdf_sample`)."""
    if config.greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return inverse_cdf_sample(key, filter_logits(logits, config))


#: The default: argmax decoding.
GREEDY = Sampling(greedy=True)


class Generated(NamedTuple):
    """Output of :func:`generate`.

    Attributes:
        tokens: int32 ``[B, N]`` new tokens (0 after a row stopped).
        lengths: int32 ``[B]``, tokens generated per row (a stop token included).
        log_probs: float32 ``[B, N]``, the model's log-probability of each token
            (before temperature and filtering; 0 after a row stopped).
    """

    tokens: jax.Array
    lengths: jax.Array
    log_probs: jax.Array


def _right_align(prompts: jax.Array, lengths: jax.Array, padding: Padding):
    """Rows moved to end at column ``P - 1`` and the reset mask at each row's
    first real token."""
    width = prompts.shape[1]
    cols = jnp.arange(width, dtype=jnp.int32)[None, :]
    first = (width - lengths)[:, None]
    if padding == "right":
        src = jnp.clip(cols - first, 0, width - 1)
        aligned = jnp.take_along_axis(prompts, src, axis=1)
        prompts = jnp.where(cols >= first, aligned, 0)
    return prompts, cols == first


def _generator(
    apply: Callable[..., Any],
    init_carry: Callable[[Any, int], Any],
    max_new_tokens: int,
    config: Sampling,
    stop_tokens: tuple[int, ...],
    padding: Padding,
) -> Callable[..., Generated]:
    stops = jnp.asarray(stop_tokens, jnp.int32)

    def run(params: Any, key: jax.Array, prompts: jax.Array, lengths: jax.Array):
        batch = prompts.shape[0]
        ids, resets = _right_align(prompts, lengths.astype(jnp.int32), padding)
        carry, logits = apply(params, init_carry(params, batch), ids, resets=resets)

        def body(state, k):
            carry, last, done = state
            tok = next_token(k, last, config)
            logp = jnp.take_along_axis(jax.nn.log_softmax(last), tok[:, None], 1)[:, 0]
            tok = jnp.where(done, 0, tok)
            stopped = done | jnp.isin(tok, stops) if stop_tokens else done
            carry, logits = apply(params, carry, tok[:, None])
            logp = jnp.where(done, 0.0, logp)
            return (carry, logits[:, 0], stopped), (tok, logp, done)

        init = (carry, logits[:, -1].astype(jnp.float32), jnp.zeros((batch,), bool))
        keys = jax.random.split(key, max_new_tokens)
        _, (toks, logps, done) = jax.lax.scan(body, init, keys)
        return Generated(toks.T, jnp.sum(~done, axis=0, dtype=jnp.int32), logps.T)

    return jax.jit(run)


# one compiled loop per live model function and options; never keeps a model alive
_cached_generator = weak_cache(_generator)


def make_generator(
    lm: LanguageModel,
    *,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    stop_tokens: Sequence[int] = (),
    padding: Padding = "right",
) -> Callable[[Any, jax.Array, jax.Array, jax.Array], Generated]:
    """The compiled generation loop ``gen(params, key, prompts, lengths) ->
    Generated`` (no checks on the data; :func:`generate` checks, then calls it).

    The same arguments return the same function (a small cache), which compiles
    once per ``prompts`` shape.
    """
    check_positive("max_new_tokens", max_new_tokens)
    if not isinstance(sampling, Sampling):
        raise TypeError(
            f"sampling: expected a jaxseq.lm.Sampling (jaxseq.lm.sampling(...)), got "
            f"{type(sampling).__name__}."
        )
    if padding not in ("right", "left"):
        raise ValueError(f"padding: expected 'right' or 'left', got {padding!r}.")
    stops = tuple(int(s) for s in stop_tokens)
    check_ids("stop_tokens", np.asarray(stops, np.int32), lm.vocab_size)
    if sampling.top_k is not None and sampling.top_k > lm.vocab_size:
        raise ValueError(
            f"top_k: expected at most the vocabulary size {lm.vocab_size}, got "
            f"{sampling.top_k}."
        )
    return _cached_generator(
        lm.apply, lm.init_carry, int(max_new_tokens), sampling, stops, padding
    )


def generate(
    lm: LanguageModel,
    params: Any,
    key: jax.Array,
    prompts: Any,
    lengths: Any = None,
    *,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    stop_tokens: Sequence[int] = (),
    padding: Padding = "right",
) -> Generated:
    """Continue a batch of prompts.

    Args:
        lm: a :class:`~jaxseq.lm.LanguageModel`.
        params: its parameters.
        key: PRNG key (``jax.random.key(seed)``); unused when greedy.
        prompts: int ``[B, P]`` token ids, padded with anything; or ``[P]``
            for one prompt.
        lengths: int ``[B]`` valid tokens per row, each in ``[1, P]`` (default:
            ``P`` for every row).
        max_new_tokens: ``N``, tokens to generate per row.
        sampling: a :class:`Sampling` (default greedy).
        stop_tokens: ids that end a row (emitted, then padding).
        padding: ``"right"`` (valid tokens first) or ``"left"``.

    Returns:
        :class:`Generated` (tokens ``[B, N]``; for a ``[P]`` prompt still ``[1,
        N]``).

    Raises:
        ValueError: for an empty prompt (``P == 0`` or a length 0), lengths
            outside ``[1, P]``, ids outside the vocabulary, bad sampling options.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq import lm
        >>> model = lm.rnn_lm(20, cell="elman", embed_dim=4, hidden=4, num_layers=1)
        >>> params = model.init(jax.random.key(0))
        >>> out = lm.generate(model, params, jax.random.key(1), jnp.array([3, 4, 5]),
        ...                   max_new_tokens=6, sampling=lm.sampling(top_k=5))
        >>> out.tokens.shape, out.lengths.tolist()
        ((1, 6), [6])
    """
    prompts = jnp.asarray(prompts)
    if prompts.ndim == 1:
        prompts = prompts[None]
    if prompts.ndim != 2:
        raise ValueError(
            f"prompts: expected [B, P] (or [P]) token ids, got shape {prompts.shape}."
        )
    if prompts.shape[1] == 0:
        raise ValueError("prompts: expected at least one token per prompt, got P = 0.")
    check_ids("prompts", prompts, lm.vocab_size)
    batch, width = prompts.shape
    if lengths is None:
        lengths = jnp.full((batch,), width, jnp.int32)
    lengths = jnp.asarray(lengths)
    if lengths.shape != (batch,) or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(
            f"lengths: expected integer shape ({batch},), got {lengths.dtype} "
            f"{lengths.shape}."
        )
    if not isinstance(lengths, jax.core.Tracer):
        n = np.asarray(lengths)
        if (n < 1).any() or (n > width).any():
            bad = int(n[(n < 1) | (n > width)][0])
            raise ValueError(
                f"lengths: expected each prompt length in [1, {width}] (an empty "
                f"prompt has nothing to continue), got {bad}."
            )
    gen = make_generator(
        lm,
        max_new_tokens=max_new_tokens,
        sampling=sampling,
        stop_tokens=stop_tokens,
        padding=padding,
    )
    return gen(params, key, prompts.astype(jnp.int32), lengths.astype(jnp.int32))
