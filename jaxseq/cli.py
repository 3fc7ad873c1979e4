"""The ``jaxseq`` command line: ``jaxseq [--debug] [--version] COMMAND [ARGS...]``.

Each command lives in the module that owns the feature and exposes
``main(argv: list[str]) -> int``; this file dispatches, importing lazily so that
``jaxseq --help`` stays fast and optional extras are needed only by the
commands that use them. It also holds the conventions every command follows:

- :class:`Parser`: ``argparse`` without abbreviated flags (``--epoch`` is not
  ``--epochs``), with usage errors in one line, ``PROG: error: argument
  --flag: ...`` (exit status 2), ``--version``, and plain-text help that shows
  each option's default (:class:`HelpFormatter`);
- one flag name per idea in every command: ``--lr`` (learning rate),
  ``--seed`` (PRNG seed), ``--json`` (machine output), ``--quiet`` (no progress
  bars, no info lines); progress shows by default only where a person watches
  (:func:`watched`: stderr is a terminal and ``CI`` is unset);
- argument types (:func:`positive_int`, :func:`positive_float`,
  :func:`fraction`, :func:`seed`, :func:`output_dir`, ...) that check a value
  when the command line is parsed, before any data is read, and name the flag;
- :func:`run_command`: an error while the command runs (bad data, a damaged
  file, a diverging run, ...) is one line on stderr, ``PROG: error: ...``,
  exit status 1. ``jaxseq --debug COMMAND ...`` or ``JAXSEQ_DEBUG=1`` shows the
  traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import sys
from collections.abc import Callable
from typing import NoReturn

#: command -> (module holding ``main(argv)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("jaxseq.demo", "the main job on its embedded default (no download)"),
    "train": (
        "jaxseq.models.cli_train",
        "train a text classifier (train text --data DIR|FILE.csv, train imdb) "
        "or a language model (train lm)",
    ),
    "predict": (
        "jaxseq.models.cli_predict",
        "the class of each text and its probability, from a saved classifier",
    ),
    "eval": (
        "jaxseq.models.cli_eval",
        "accuracy of a saved classifier; perplexity of a language model run",
    ),
    "generate": (
        "jaxseq.lm.cli_generate",
        "continue prompts with a language model: jaxseq generate RUN_DIR 'text'",
    ),
    "forecast": (
        "jaxseq.forecast.cli",
        "forecast series: jaxseq forecast --data f.csv --horizon 12 --model lstm",
    ),
    "bayes": (
        "jaxseq.bayes.cli",
        "Bayesian shallow net: jaxseq bayes fit --data f.csv --hidden 4",
    ),
}

#: exit status of an error while a command runs (usage errors: 2, argparse's)
ERROR_STATUS = 1
_DEBUG_ENV = "JAXSEQ_DEBUG"
_debug_flag = False  # set by ``jaxseq --debug`` for the duration of main()


def version() -> str:
    """jaxseq's version: the installed distribution's, else ``jaxseq.__version__``."""
    from importlib import metadata

    try:
        return metadata.version("jaxseq")
    except metadata.PackageNotFoundError:
        from . import __version__

        return __version__


def watched() -> bool:
    """Whether a person is watching: stderr is a terminal and the environment
    variable ``CI`` is unset (or ``0``/``false``/``no``). Progress bars show by
    default only then (``--quiet`` turns them off everywhere)."""
    ci = os.environ.get("CI", "").strip().lower()
    if ci not in ("", "0", "false", "no"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """Add the ``--quiet`` flag every command shares (``args.quiet``)."""
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars and no info lines (progress shows by default "
        "only on a terminal with CI unset)",
    )


def show_progress(quiet: bool) -> bool:
    """Whether a command shows progress bars: not ``--quiet`` and :func:`watched`."""
    return not quiet and watched()


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: jaxseq [--debug] [--version] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [
        "",
        "`jaxseq COMMAND --help` describes a command's arguments. Errors are one",
        f"line on stderr; --debug (or {_DEBUG_ENV}=1) shows the traceback instead.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxseq`` script and of ``python -m jaxseq``."""
    global _debug_flag
    argv = list(sys.argv[1:] if argv is None else argv)
    previous = _debug_flag
    if argv and argv[0] == "--debug":
        _debug_flag, argv = True, argv[1:]
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(_usage())
            return 0
        if argv[0] == "--version":
            print(f"jaxseq {version()}")
            return 0
        name, rest = argv[0], argv[1:]
        if name not in COMMANDS:
            print(
                f"jaxseq: error: unknown command {name!r}; expected one of "
                f"{', '.join(COMMANDS)} (jaxseq --help describes them).",
                file=sys.stderr,
            )
            return 2
        _retain_host_memory()
        module = importlib.import_module(COMMANDS[name][0])
        return run_command(f"jaxseq {name}", lambda: int(module.main(rest) or 0))
    finally:
        _debug_flag = previous


def debugging() -> bool:
    """Whether errors should show their traceback (``--debug``, ``JAXSEQ_DEBUG``)."""
    return _debug_flag or os.environ.get(_DEBUG_ENV, "") not in ("", "0")


def run_command(prog: str, body: Callable[[], int]) -> int:
    """``body()``, with any exception reported as one line on stderr.

    Expected errors (``ValueError``, ``TypeError``, ``OSError``, arithmetic
    errors such as :class:`jaxseq.train.NonFiniteError`, missing optional
    packages, and jaxseq's own error classes) print ``PROG: error: message``;
    anything else is a bug and says so. Both return :data:`ERROR_STATUS`.
    ``KeyboardInterrupt`` returns 130. With :func:`debugging` the exception
    propagates with its traceback.
    """
    try:
        return body()
    except KeyboardInterrupt:
        if debugging():
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debugging():
            raise
        print(f"{prog}: error: {error_line(err)}", file=sys.stderr)
        return ERROR_STATUS


_EXPECTED = (ValueError, TypeError, OSError, ArithmeticError, ImportError, LookupError)


def error_line(err: BaseException) -> str:
    """One line describing ``err``: its message with line breaks folded (JAX's
    note on filtered frames dropped); an unexpected exception type is named and
    marked as a bug, with how to see its traceback."""
    text = str(err)
    text = text.split("\n--------------------\n", 1)[0]  # JAX's traceback note
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = " ".join(lines) or type(err).__name__
    if isinstance(err, OSError) and err.filename and err.strerror:
        message = f"{err.filename}: {err.strerror}"
    if isinstance(err, _EXPECTED) or type(err).__module__.startswith("jaxseq"):
        return message
    return (
        f"internal error ({type(err).__name__}: {message}); rerun with "
        f"{_DEBUG_ENV}=1 for the traceback and report it"
    )


# ------------------------------------------------------------------ parsing
_REST = [
    (re.compile(r":[a-z]+:`~?([^`]+)`"), r"\1"),  # :func:`x` -> x
    (re.compile(r"``([^`]+)``"), r"\1"),  # ``x`` -> x
    (re.compile(r"(\S)::$", re.M), r"\1:"),  # "text::" (a literal block follows)
    (re.compile(r"^\s*::$\n?", re.M), ""),
]


def plain_text(text: str) -> str:
    """``text`` without reST markup (roles, double back-quotes, ``::``)."""
    for pattern, replacement in _REST:
        text = pattern.sub(replacement, text)
    return text


class HelpFormatter(
    argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter
):
    """Help as plain text: the description and epilog keep their line breaks
    (reST markup removed), and each option's help ends with its default,
    ``(default: 25)``, unless the default is ``None``/``False`` or the help
    already names it."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain_text(text))

    def _get_help_string(self, action: argparse.Action) -> str:
        help_ = plain_text(action.help or "")
        default = action.default
        if (
            default is None
            or default is False
            or default == argparse.SUPPRESS
            or "default" in help_.lower()
            or isinstance(action, argparse._VersionAction)
        ):
            return help_
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for jaxseq commands: no abbreviated long
    options (``allow_abbrev=False``, also for subparsers), usage errors in one
    line on stderr naming the argument (exit status 2), ``--version``, and
    plain-text help showing the defaults (:class:`HelpFormatter`; a
    ``formatter_class`` of ``RawDescriptionHelpFormatter`` is taken as it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        if kwargs.get("formatter_class") in (
            None,
            argparse.RawDescriptionHelpFormatter,
        ):
            kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)
        if self.add_help:
            self.add_argument(
                "--version",
                action="version",
                version=f"jaxseq {version()}",
                help="show jaxseq's version and exit",
            )

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", Parser)
        return super().add_subparsers(**kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _type(name: str, check: Callable[[str], object]) -> Callable[[str], object]:
    check.__name__ = name  # argparse names the type in some of its messages
    return check


def _number(text: str, kind: type, expected: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def int_at_least(low: int, why: str = "") -> Callable[[str], object]:
    """An ``argparse`` type: an integer ``>= low``."""
    expected = f"an integer >= {low}{f' ({why})' if why else ''}"

    def check(text: str) -> int:
        value = int(_number(text, int, expected))
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return _type(f"int >= {low}", check)


positive_int = int_at_least(1)


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite float ``> 0`` (a learning rate, ...)."""
    expected = "a finite number > 0"
    value = float(_number(text, float, expected))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def interval(
    low: float, high: float, *, low_closed: bool = False, high_closed: bool = False
) -> Callable[[str], object]:
    """An ``argparse`` type: a finite number in the interval from ``low`` to
    ``high``, each end open unless ``*_closed``. Its message names the interval
    as ``[0, 1)``, ``(0, 1]``, ..."""
    left, right = "[" if low_closed else "(", "]" if high_closed else ")"
    shown = f"{left}{low:g}, {high:g}{right}"
    return _type(
        f"number in {shown}",
        _interval_check(low, high, low_closed, high_closed, f"a number in {shown}"),
    )


def _interval_check(
    low: float, high: float, low_closed: bool, high_closed: bool, expected: str
) -> Callable[[str], float]:
    def check(text: str) -> float:
        value = float(_number(text, float, expected))
        above = value >= low if low_closed else value > low
        below = value <= high if high_closed else value < high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return check


#: An ``argparse`` type: a number strictly between 0 and 1.
fraction = _type(
    "fraction",
    _interval_check(0.0, 1.0, False, False, "a number strictly between 0 and 1"),
)


def seed(text: str) -> int:
    """An ``argparse`` type: a PRNG seed, an integer in ``[0, 2**32)``."""
    expected = "an integer in [0, 2**32)"
    value = int(_number(text, int, expected))
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def existing_file(text: str) -> str:
    """An ``argparse`` type: a path to a file that exists."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a file, got the directory {text}")
    return text


def existing_dir(text: str) -> str:
    """An ``argparse`` type: a path to a directory that exists."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a directory, got the file {text}")
    return text


def output_dir(text: str) -> str:
    """An ``argparse`` type: a directory that is or can be made writable: an
    existing writable directory, or a new path whose nearest existing parent is
    a writable directory (nothing is created here)."""
    path = os.path.abspath(text)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise argparse.ArgumentTypeError(
                f"expected a directory, got the file {text}"
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{text} is not writable")
        return text
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(
            f"cannot create {text}: {parent} is a file, not a directory"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot create {text}: {parent} is not writable"
        )
    return text


def _retain_host_memory() -> None:
    """A command is a whole process: keep freed host memory for XLA's next call
    (:func:`jaxseq.host.retain_memory`; about 25% off a large CPU training step).
    ``JAXSEQ_RETAIN_MEMORY=0`` leaves the allocator alone; so does a call made
    after JAX has started (as when a test drives this function in-process)."""
    if os.environ.get("JAXSEQ_RETAIN_MEMORY", "1") == "0":
        return
    from . import host

    if not host.backend_started():
        host.retain_memory()
