"""Shared fixtures. Strict dtype/rank promotion is scoped to the cell and runner
tests (tests/cells/conftest.py) because optax/numpyro internals are not written
for it."""

from __future__ import annotations

import contextlib
import os

# Keras 3 (an optional comparison peer) must use the JAX backend; TensorFlow is not
# a jaxseq dependency. Set before any test imports keras.
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # mkdocs-material's banner

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)


@contextlib.contextmanager
def _float64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def x64():
    """Run a test in float64 (for gradient checks), restoring the flag after."""
    with _float64():
        yield


@pytest.fixture(scope="module")
def x64_module():
    """float64 for a whole module (module-scoped fixtures then share compilations)."""
    with _float64():
        yield
