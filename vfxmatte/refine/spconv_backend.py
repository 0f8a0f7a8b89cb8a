"""The spconv path of the sparse refinement network (``impl="spconv"``).

``spconv.pytorch.SubMConv2d`` computes the same submanifold convolution as
:func:`vfxmatte.refine.sparse_conv.subm_conv3x3` with the same ``(out, kh, kw,
in)`` weights. It is the accelerator on CUDA (``pip install spconv-cu121``, or
the wheel matching your CUDA). The CPU wheel (``pip install spconv``) has two
known problems that this module works around:

* its forward and its gradients are wrong at random sites with more than one
  thread, so on CPU every spconv call runs with ``torch.set_num_threads(1)``
  (restored afterwards), backward included: on CPU the segment is one autograd
  function whose backward recomputes the layers single-threaded and
  differentiates them there;
* backward on a CPU-only torch fails in ``spconv.pytorch.ops`` asking for the
  current CUDA stream; :func:`import_spconv` replaces
  ``spconv.pytorch.ops.get_current_stream`` by a function returning 0 when
  torch has no CUDA (the stream is never used on CPU).

spconv is imported only here, when this path runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from vfxmatte.errors import BackendUnavailableError

__all__ = ["INSTALL_HINT", "SpconvTrunk", "import_spconv", "single_thread"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install spconv: 'pip install spconv-cu121' (or the wheel matching your CUDA) on a GPU "
    "machine, 'pip install spconv' on CPU (correct only single-threaded), or use "
    "refine.sparse.impl=torch"
)


def import_spconv() -> Any:
    """``spconv.pytorch``, patched for backward on a CPU-only torch.

    Raises:
        BackendUnavailableError: spconv is not installed (with the install hint).
    """
    try:
        import spconv.pytorch as spconv
        import spconv.pytorch.ops as ops
    except ImportError as exc:
        raise BackendUnavailableError(
            f"The sparse refiner's spconv path needs spconv ({exc}); {INSTALL_HINT}."
        ) from exc
    if not torch.cuda.is_available() and not getattr(ops, "_vfxmatte_cpu_patch", False):
        ops.get_current_stream = _no_stream
        ops._vfxmatte_cpu_patch = True
        log.debug("Patched spconv.pytorch.ops.get_current_stream for a CPU-only torch.")
    return spconv


def _no_stream() -> int:
    return 0


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one torch thread, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class SpconvTrunk:
    """Runs the network's trunk with its submanifold 3x3 convolutions done by spconv.

    The trunk function (the one that also drives the torch and dense paths) calls
    ``conv(x, i)`` to apply layer ``i``, here with ``weights[i]`` of shape
    ``(out, 3, 3, in)`` and ``biases[i]`` of shape ``(out,)``. The index pairs of the
    active set are computed by the first layer and reused by the others.
    """

    def __init__(self, coords: torch.Tensor, height: int, width: int) -> None:
        self.spconv = import_spconv()
        # spconv indices are int32 (batch, y, x); one batch.
        self.indices = torch.cat([torch.zeros_like(coords[:, :1]), coords], dim=1).to(torch.int32)
        self.shape = [int(height), int(width)]

    def run(
        self,
        trunk: Callable[[torch.Tensor, Callable[..., torch.Tensor]], torch.Tensor],
        x: torch.Tensor,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """``trunk(x, conv)`` with ``conv`` backed by spconv.

        On CPU the whole call (and its backward) runs single-threaded.
        """
        n = len(weights)

        def apply(x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
            return trunk(x, self._conv_fn(params[:n], params[n:]))

        if x.device.type != "cpu":
            return apply(x, *weights, *biases)
        params = [*weights, *biases]
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
            return _SingleThreadSegment.apply(apply, x, *params)
        with single_thread():
            return apply(x, *params)

    def _conv_fn(
        self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]
    ) -> Callable[[torch.Tensor, int], torch.Tensor]:
        spconv = self.spconv
        state: dict[str, Any] = {"tensor": None}

        def conv(x: torch.Tensor, i: int) -> torch.Tensor:
            weight, bias = weights[i], biases[i]
            previous = state["tensor"]
            if previous is None:
                tensor = spconv.SparseConvTensor(x, self.indices.to(x.device), self.shape, 1)
            else:  # keeps the index pairs computed by the first layer
                tensor = previous.replace_feature(x)
            module = spconv.SubMConv2d(
                weight.shape[3], weight.shape[0], 3, bias=False, indice_key="vfxmatte_subm3"
            )
            # training=True keeps the implicit-GEMM path differentiable on CUDA; the bias is
            # added here because spconv's CPU kernels refuse a fused bias.
            out = module._conv_forward(torch.is_grad_enabled(), tensor, weight, None)
            state["tensor"] = out
            return out.features + bias

        return conv


class _SingleThreadSegment(torch.autograd.Function):
    """A function whose forward and backward both run with one torch thread.

    Backward recomputes the forward with autograd on (single-threaded) and
    differentiates it there, so none of spconv's CPU backward kernels runs with
    more than one thread, whatever the caller's thread count.
    """

    @staticmethod
    def forward(ctx: Any, fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
        ctx.fn = fn
        ctx.save_for_backward(*tensors)
        with torch.no_grad(), single_thread():
            return fn(*tensors)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        needs = ctx.needs_input_grad[1:]
        inputs = [
            t.detach().requires_grad_(need)
            for t, need in zip(ctx.saved_tensors, needs, strict=True)
        ]
        wanted = [t for t in inputs if t.requires_grad]
        with torch.enable_grad(), single_thread():
            out = ctx.fn(*inputs)
            grads = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
        return (None, *(next(grads) if t.requires_grad else None for t in inputs))
