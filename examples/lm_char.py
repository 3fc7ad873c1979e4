"""A character-level LSTM language model on the IMDb reviews shipped with jaxseq:
stateful truncated BPTT over 32 parallel streams (chunks of 64 characters),
validation bits per character, then text sampled from prompts (greedy,
temperature, top-k, nucleus).

    python examples/lm_char.py           # 800 updates, H = 128: a few minutes
    python examples/lm_char.py --small   # a few seconds (150 updates)
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

from jaxseq import lm, text
from jaxseq.data import imdb


def main(small: bool) -> float:
    sizes = (60, 10, 64, 150) if small else (600, 60, 128, 800)
    n_train, n_valid, hidden, updates = sizes
    reviews = imdb.load("train", source="sample").texts
    train_texts, valid_texts = reviews[:n_train], reviews[-n_valid:]
    vocab = lm.lm_vocabulary(train_texts, text.char_tokenizer(lower=False))
    train = lm.chunk_stream(lm.encode_stream(vocab, train_texts), 32, 64)
    valid = lm.chunk_stream(lm.encode_stream(vocab, valid_texts), 8, 64)
    print(f"vocabulary {len(vocab)} characters; {train.inputs.size:,} training "
          f"characters in {train.num_chunks} chunks of 32 x 64")  # fmt: skip

    model = lm.rnn_lm(len(vocab), cell="lstm", embed_dim=hidden, hidden=hidden,
                      num_layers=1, tied=True)  # fmt: skip
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    state = lm.init_stream_state(model, model.init(jax.random.key(0)), opt,
                                 jax.random.key(1), batch_size=32)  # fmt: skip
    start = time.perf_counter()
    epochs = -(-updates // train.num_chunks)  # each epoch starts from a fresh carry
    state, history = lm.train_epochs(model, opt, state, train, epochs=epochs,
                                     max_steps=updates)  # fmt: skip
    epoch = len(history)
    print(f"training perplexity by epoch: "
          f"{[round(h['perplexity'], 1) for h in history]}")  # fmt: skip
    result = lm.evaluate_stream(model, state.train.params, valid)
    print(f"{int(state.train.step)} updates ({epoch} epochs) in "
          f"{time.perf_counter() - start:.1f} s; validation: "
          f"{result['bits_per_token']:.2f} bits per character "
          f"(uniform: {np.log2(len(vocab)):.2f})")  # fmt: skip

    prompts = ["This movie was ", "The acting "]
    ids = [lm.encode_stream(vocab, [p]).ids[:-1] for p in prompts]  # <eos> + text
    width = max(len(i) for i in ids)
    batch = np.zeros((len(ids), width), np.int32)
    for b, i in enumerate(ids):
        batch[b, : len(i)] = i
    lengths = np.array([len(i) for i in ids], np.int32)
    for name, cfg in [
        ("greedy", lm.sampling(greedy=True)),
        ("temperature 0.7", lm.sampling(temperature=0.7)),
        ("top-k 5", lm.sampling(top_k=5)),
        ("top-p 0.9", lm.sampling(top_p=0.9)),
    ]:
        out = lm.generate(
            model, state.train.params, jax.random.key(2), batch, lengths,
            max_new_tokens=60, sampling=cfg, stop_tokens=[lm.EOS_ID],
        )  # fmt: skip
        for b, p in enumerate(prompts):
            row = np.asarray(out.tokens[b, : out.lengths[b]])
            chars = text.decode(vocab, row[row != lm.EOS_ID])
            print(f"[{name}] {p}{''.join(chars)!r}")
    return result["bits_per_token"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few seconds")
    bpc = main(parser.parse_args().small)
    assert bpc < 4.5, f"validation bits per character {bpc:.2f}: did not learn"
