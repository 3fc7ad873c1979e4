from __future__ import annotations

import jax
import pytest


@pytest.fixture(autouse=True)
def _strict_promotion():
    """Cells and runners must not rely on implicit dtype or rank promotion."""
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        yield
