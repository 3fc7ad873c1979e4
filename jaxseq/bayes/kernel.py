"""A NumPyro ``MCMCKernel`` adapter around the pure sweep in :mod:`jaxseq.bayes.gibbs`.

:class:`BlockedGibbs` runs under :class:`numpyro.infer.MCMC` like NUTS does: several
chains (``chain_method="vectorized"`` on one device, ``"parallel"`` across devices),
warm-up adaptation of the Metropolis moves, ``print_summary`` and
``get_extra_fields``. The kernel object holds only configuration; everything that
changes lives in :class:`GibbsKernelState` (``sample`` never assigns to ``self``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.mcmc import MCMCKernel
from numpyro.util import is_prng_key

from . import adaptation, gibbs
from ._sweep import GibbsKernelState, GibbsSweep
from ._validate import check_xy
from .models import augment, check_prior
from .simulate import initial_position

__all__ = ["BlockedGibbs", "GibbsKernelState"]


class BlockedGibbs(GibbsSweep, MCMCKernel):
    """The Müller–Ríos Insua blocked Gibbs/Metropolis sampler as an ``MCMCKernel``.

    The model arguments passed to ``MCMC.run`` are ``(x, y)``: ``x`` ``[n, p]``
    inputs and ``y`` ``[n]`` responses, on the scale the prior is meant for
    (:func:`jaxseq.bayes.fit` standardises both first).

    Args:
        hidden: ``m``, the number of hidden units.
        prior: hyperparameters; :func:`~jaxseq.bayes.default_prior` when ``None``.
        bias: sample an output bias ``b0``.
        proposal: the Metropolis moves (a :class:`~jaxseq.bayes.moves.Moves`, or
            its string form, parsed once here), joined by ``"+"`` from ``"rw"``,
            ``"scale"``, ``"flip"``, ``"prior"`` (per unit,
            :mod:`jaxseq.bayes.moves`) and ``"hmc"``, ``"group"``,
            ``"sigma_beta"`` (per sweep, :mod:`jaxseq.bayes.blocks`); default
            ``"rw+scale+flip+hmc+group+sigma_beta"``.
        target_accept: random-walk acceptance rate targeted during warm-up.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from numpyro.infer import MCMC
        >>> x = jnp.linspace(-2.0, 2.0, 40)[:, None]
        >>> y = jnp.tanh(2.0 * x[:, 0])
        >>> mcmc = MCMC(BlockedGibbs(hidden=2), num_warmup=50, num_samples=50,
        ...             num_chains=2, chain_method="vectorized", progress_bar=False)
        >>> mcmc.run(jax.random.key(0), x, y)
        >>> mcmc.get_samples(group_by_chain=True)["gamma"].shape
        (2, 50, 2, 2)
    """

    sample_field = "z"

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "info")

    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs):
        x, y = _unpack(model_args, model_kwargs)
        if not isinstance(x, jax.core.Tracer) and not isinstance(y, jax.core.Tracer):
            check_xy(x, y)
        prior = self._prior(x)
        check_prior(prior, int(np.shape(x)[1]))
        if is_prng_key(rng_key):
            return self._init_one(rng_key, num_warmup, init_params, x, y, prior)
        init_one = lambda k, p: self._init_one(k, num_warmup, p, x, y, prior)
        return jax.vmap(init_one)(rng_key, init_params)

    def _init_one(self, key, num_warmup, init_params, x, y, prior):
        dtype = jnp.result_type(float)
        key, k_init = jax.random.split(key)
        if init_params is None:
            position = initial_position(k_init, prior, self.hidden, dtype)
        else:  # a NetParams or a dict of the model's sites (b0 = 0 if absent)
            sites = dict(
                init_params._asdict()
                if hasattr(init_params, "_asdict")
                else init_params
            )
            sites.setdefault("b0", 0.0)
            position = gibbs.NetParams(
                **{k: jnp.asarray(sites[k], dtype) for k in gibbs.NetParams._fields}
            )
        d = position.gamma.shape[1]
        data = gibbs.Data(augment(jnp.asarray(x, dtype)), jnp.asarray(y, dtype))
        nan = jnp.full((self.hidden,), jnp.nan, dtype)
        scalar_nan = jnp.array(jnp.nan, dtype)
        loglik = gibbs.loglik(position, data, self.bias)
        info = gibbs.GibbsInfo(nan, nan, nan, nan, *[scalar_nan] * 3, loglik)
        return GibbsKernelState(
            i=jnp.zeros((), jnp.int32),
            z=position,
            proposal=adaptation.init_proposal(self.hidden, d, dtype),
            adapt_state=adaptation.init_adaptation(self.hidden, d, dtype),
            info=info,
            num_warmup=jnp.asarray(num_warmup, jnp.int32),
            rng_key=key,
        )

    def sample(self, state, model_args, model_kwargs):
        x, y = _unpack(model_args, model_kwargs)
        if is_prng_key(state.rng_key):
            return self._sample_one(state, x, y)
        return jax.vmap(lambda s: self._sample_one(s, x, y))(state)

    def postprocess_fn(self, model_args, model_kwargs):
        """``NetParams -> dict`` of the model's sample sites (``b0`` only with bias)."""
        # module-level functions, so the same object at every call: numpyro
        # caches its compiled sampling loop on the postprocessing function's identity
        return _sites_with_bias if self.bias else _sites_without_bias

    def get_diagnostics_str(self, state) -> str:
        acc = np.stack([np.asarray(a) for a in state.info[:2]])
        loglik = float(np.mean(state.info.loglik))
        return f"accept {np.nanmean(acc):.2f}, loglik {loglik:.1f}"


def _sites_with_bias(z: gibbs.NetParams) -> dict:
    return z._asdict()


def _sites_without_bias(z: gibbs.NetParams) -> dict:
    sites = z._asdict()
    sites.pop("b0")
    return sites


def _unpack(model_args, model_kwargs):
    """``(x, y)`` from positional or keyword model arguments."""
    kwargs = dict(model_kwargs or {})
    args = tuple(model_args) + tuple(kwargs.pop(k) for k in ("x", "y") if k in kwargs)
    if len(args) != 2 or kwargs:
        raise ValueError(
            "BlockedGibbs: expected model arguments (x, y) to MCMC.run, got "
            f"{len(tuple(model_args))} positional and keywords "
            f"{sorted(model_kwargs or {})}."
        )
    return args
