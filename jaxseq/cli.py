"""The ``jaxseq`` command line: ``jaxseq COMMAND [ARGS...]``.

Each command lives in the module that owns the feature and exposes
``main(argv: list[str]) -> int``; this file only dispatches, importing lazily so
that ``jaxseq --help`` stays fast and optional extras are needed only by the
commands that use them.
"""

from __future__ import annotations

import importlib
import os
import sys

#: command -> (module holding ``main(argv)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("jaxseq.demo", "the main job on its embedded default (no download)"),
    "train": (
        "jaxseq.models.cli_train",
        "train a text classifier: jaxseq train imdb --model lstm",
    ),
    "predict": (
        "jaxseq.models.cli_predict",
        "positive-review probability from a saved model",
    ),
    "eval": ("jaxseq.models.cli_eval", "accuracy of a saved model on a labelled split"),
    "bayes": (
        "jaxseq.bayes.cli",
        "Bayesian shallow net: jaxseq bayes fit --data f.csv --hidden 4",
    ),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: jaxseq COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`jaxseq COMMAND --help` describes a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxseq`` script and of ``python -m jaxseq``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"jaxseq: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    _retain_host_memory()
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


def _retain_host_memory() -> None:
    """A command is a whole process: keep freed host memory for XLA's next call
    (:func:`jaxseq.host.retain_memory`; about 25% off a large CPU training step).
    ``JAXSEQ_RETAIN_MEMORY=0`` leaves the allocator alone; so does a call made
    after JAX has started (as when a test drives this function in-process)."""
    if os.environ.get("JAXSEQ_RETAIN_MEMORY", "1") == "0":
        return
    from . import host

    if not host._backend_started():
        host.retain_memory()
