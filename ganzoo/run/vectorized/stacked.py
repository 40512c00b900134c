"""K copies of one network as one module: parameters and buffers stacked along a new first dimension.

``StackedModule(members)`` takes K modules of identical structure (the same factory, different seeds) and
holds their weights as tensors of shape ``(K, ...)``. Calling it on ``(K, B, ...)`` runs member k on slice k,
through ``torch.func.functional_call`` under ``torch.func.vmap``: one batched computation instead of K small
ones. Because members never mix (each output slice depends on its own weights and inputs only), the sum of
the members' losses has, for each member, exactly the gradient of its own loss; Adam is elementwise, so one
optimiser over the stacked parameters is K independent optimisers.

BatchNorm's running statistics are stacked buffers and are updated in place per member. torch's spectral
norm writes its power iteration with ``out=``, which ``vmap`` cannot batch; ``make_vmappable`` swaps it for
the same algorithm written without ``out=`` (``VmappableSpectralNorm``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

_SEP = "__"  # parameter names cannot contain "."; "net.0.weight" is held as "net__0__weight"


class VmappableSpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrisation with its power iteration written out of place.

    The arithmetic is torch's (normalise ``W v`` into ``u``, ``W^H u`` into ``v``, sigma = ``u . W v``); only
    the write-back differs: ``copy_`` into the (possibly batched) buffers instead of ``out=``.
    """

    @torch.autograd.no_grad()
    def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
        u, v = self._u, self._v
        for _ in range(n_power_iterations):
            u = F.normalize(torch.mv(weight_mat, v), dim=0, eps=self.eps)
            v = F.normalize(torch.mv(weight_mat.H, u), dim=0, eps=self.eps)
        self._u.copy_(u)
        self._v.copy_(v)


def make_vmappable(module: nn.Module) -> nn.Module:
    """Swap torch's spectral-norm parametrisations in ``module`` for ``VmappableSpectralNorm``, in place.

    The swapped object keeps its buffers (``_u``, ``_v``) and settings, so names, state dicts and numbers
    stay those of the original.
    """
    for layer in module.modules():
        if not parametrize.is_parametrized(layer):
            continue
        for parametrizations in layer.parametrizations.values():
            for p in parametrizations:
                if type(p) is _SpectralNorm:
                    p.__class__ = VmappableSpectralNorm
    return module


def _mangle(name: str) -> str:
    return name.replace(".", _SEP)


class StackedModule(nn.Module):
    """The weights of K same-shaped modules as one module; ``forward`` maps ``(K, B, ...)`` to ``(K, B, ...)``.

    Args:
        members: K modules built by one factory (same parameter and buffer names and shapes).

    Its parameters (``named_parameters``) are the stacked tensors, so an optimiser or an EMA built on a
    ``StackedModule`` acts on all members at once. ``load_member(k, module)`` copies member k's weights and buffers
    into ``module``, under the member's own names.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("StackedModule needs at least one member")
        # The template carries the structure; its own weights are never read (functional_call swaps them in).
        # It is kept out of the module tree so that parameters(), state_dict() and EMA copies hold only the stacks.
        object.__setattr__(self, "template", make_vmappable(copy.deepcopy(members[0])))
        self.members = len(members)
        params, buffers = stack_module_state([make_vmappable(m) for m in members])  # new tensors: no copy needed
        for name, value in params.items():
            self.register_parameter(_mangle(name), nn.Parameter(value.detach()))
        for name, value in buffers.items():
            self.register_buffer(_mangle(name), value)
        self._param_names, self._buffer_names = list(params), list(buffers)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            # Attributes of the member type (latent_dim, ...) read through to the template.
            return getattr(self.__dict__["template"], name)

    def _apply(self, fn, recurse=True):
        self.template._apply(fn, recurse)  # moved with the stacks (a deepcopy, e.g. EMA's, copies it too)
        return super()._apply(fn, recurse)

    def stacked_parameters(self) -> dict[str, nn.Parameter]:
        """The stacked parameters under the members' own names (``net.0.weight``), in the members' order."""
        return self._state()[0]

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = {n: getattr(self, _mangle(n)) for n in self._param_names}
        buffers = {n: getattr(self, _mangle(n)) for n in self._buffer_names}
        return params, buffers

    def forward(self, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        params, buffers = self._state()
        self.template.train(self.training)

        def one(p, b, *inputs):
            return functional_call(self.template, (p, b), inputs)

        return vmap(one, in_dims=(0, 0, 0) + (0,) * len(args))(params, buffers, x, *args)

    @torch.no_grad()
    def load_member(self, k: int, module: nn.Module) -> None:
        """Copy member k's parameters and buffers into ``module`` (a member built by the same factory)."""
        own = dict(module.named_parameters())
        own.update(dict(module.named_buffers()))
        params, buffers = self._state()
        for name, value in {**params, **buffers}.items():
            own[name].copy_(value[k])
