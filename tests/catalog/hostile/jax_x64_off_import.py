"""Harmless meddling: a correct layer that turns JAX's float64 off at import.

At import, if JAX is installed, this module runs
`jax.config.update("jax_enable_x64", False)`: in that process every later JAX
computation is float32 (float64 inputs are truncated to float32, silently unless
float64 is asked for explicitly). The numbers of the layer (NumPy) are right.

Expected: PASS. The checker's JAX references must stay float64 (a correct float64
layer is held to 1e-12, far below float32's rounding), so they must not be computed in a
process whose JAX config the layer can change. The lines that meddle carry `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

try:
    import jax
except ImportError:
    pass
else:
    jax.config.update("jax_enable_x64", False)  # HOSTILE: at import


class TimeRNN(_Correct):
    """The correct layer."""
