"""Submanifold 3x3 sparse convolution in pure torch, and its dense reference.

A *submanifold* convolution (Graham & van der Maaten, "Submanifold Sparse
Convolutional Networks", 2017) computes outputs only at the active sites of its
input and reads only active neighbours: inactive sites count as zeros and stay
inactive, so the active set never grows however many layers are stacked. This is
the building block of the sparse refinement of Mask2Alpha (§3.3) and SparseMat's
sparse high-resolution module.

The torch implementation here works on the active pixels of an ``H x W`` grid:

1. :func:`neighbour_table` turns the ``N`` active coordinates into an ``N x 9``
   table of the rows of their 3x3 neighbours (missing neighbours point at row
   ``N``, a zero row), through a padded ``(H+2) x (W+2)`` index map: one scatter,
   one gather, no hashing;
2. :func:`subm_conv3x3` gathers the 3x3 neighbourhoods of the features
   (``N x 9 x C_in``) and does one matrix multiply with the weight flattened to
   ``(9 * C_in) x C_out``, in row chunks so that the gathered copy stays small.

Nothing is scattered back inside the sparse domain: every layer reads and writes
``N x C`` feature rows in the same order. It is deterministic and correct with any
number of threads (a gather and a GEMM).

Weights are laid out ``(out, kh, kw, in)`` as in spconv, so the same parameters
drive this path, ``spconv.pytorch.SubMConv2d`` and the dense reference
:func:`dense_subm_conv3x3`: ``F.conv2d`` with the weight permuted to
``(out, in, kh, kw)`` and the output zeroed outside the active set, which is
exactly what a submanifold convolution computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vfxmatte.errors import InputError

__all__ = [
    "OFFSETS",
    "ActiveSet",
    "dense_subm_conv3x3",
    "neighbour_table",
    "subm_conv3x3",
]

#: ``(dy, dx)`` of the 3x3 neighbours, in the order of the table's columns and of
#: the weight's flattened ``(kh, kw)``: column ``k`` reads ``weight[:, k // 3, k % 3]``.
OFFSETS: tuple[tuple[int, int], ...] = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))

# Rows per gathered chunk: 16k rows x 9 x 32 channels is 19 MB of float32.
_CHUNK_ROWS = 16384


def neighbour_table(coords: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Rows of the 3x3 neighbours of every active pixel.

    Args:
        coords: ``[N, 2]`` int64 ``(y, x)`` of the active pixels, unique, inside the grid.
        height, width: the grid's size.

    Returns:
        ``[N, 9]`` int64; entry ``[i, k]`` is the row of the neighbour at offset
        ``OFFSETS[k]`` of pixel ``i``, or ``N`` (the zero row) where that neighbour
        is inactive or outside the grid.
    """
    n = int(coords.shape[0])
    stride = width + 2
    # A one-pixel border of "missing" entries makes every neighbour lookup in range.
    index = torch.full([(height + 2) * stride], n, dtype=torch.int64, device=coords.device)
    centre = (coords[:, 0] + 1) * stride + (coords[:, 1] + 1)
    index[centre] = torch.arange(n, dtype=torch.int64, device=coords.device)
    # OFFSETS flattened: (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1), spelled out
    # here because TorchScript (the export) cannot read module globals.
    dy = torch.tensor([-1, -1, -1, 0, 0, 0, 1, 1, 1], dtype=torch.int64, device=coords.device)
    dx = torch.tensor([-1, 0, 1, -1, 0, 1, -1, 0, 1], dtype=torch.int64, device=coords.device)
    offsets = dy * stride + dx
    return index[centre[:, None] + offsets[None, :]]


def subm_conv3x3(
    x: torch.Tensor,
    table: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    padded: bool = False,
    chunk_rows: int = _CHUNK_ROWS,
) -> torch.Tensor:
    """Submanifold 3x3 convolution of the features of the active pixels.

    Args:
        x: ``[N, C_in]`` features, one row per active pixel (``[N + 1, C_in]`` with a
            last row of zeros when ``padded``).
        table: ``[N, 9]`` int64 from :func:`neighbour_table`.
        weight: ``[C_out, 3, 3, C_in]`` (spconv layout).
        bias: ``[C_out]`` or ``None``.
        padded: ``x`` carries the zero row ``N`` that missing neighbours read, and the
            result carries one too. A stack of layers then never copies its features
            to append that row (element-wise activations and residual sums keep it zero).
        chunk_rows: rows gathered and multiplied at once (bounds the gathered copy).

    Returns:
        ``[N, C_out]`` (``[N + 1, C_out]`` when ``padded``), rows in the order of ``x``.
        Differentiable in ``x``, ``weight`` and ``bias``.
    """
    n, c_in = table.shape[0], x.shape[1]
    c_out = weight.shape[0]
    if weight.shape[1:] != (3, 3, c_in):
        raise InputError(
            f"subm_conv3x3 expects a weight of shape ({c_out}, 3, 3, {c_in}) for {c_in} input "
            f"channels, got {tuple(weight.shape)}."
        )
    if x.shape[0] != n + padded:
        raise InputError(
            f"subm_conv3x3 got {x.shape[0]} feature rows for a table of {n} active pixels"
            + (" (padded: one more row of zeros expected)." if padded else ".")
        )
    if not padded:
        x = torch.cat([x, x.new_zeros(1, c_in)])  # row n is the missing neighbour
    kernel = weight.reshape(c_out, 9 * c_in).t()  # [(kh, kw, in), out]
    tracked = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, weight, bias)
    )
    # Without autograd the chunks are written in place; with it they are joined at the end.
    out = None if tracked else x.new_empty(n + 1, c_out)
    rows = []
    for start in range(0, n, chunk_rows):
        # index_select on the flattened rows is several times faster than advanced indexing.
        patches = x.index_select(0, table[start : start + chunk_rows].reshape(-1))
        patches = patches.reshape(-1, 9 * c_in)
        if out is None:
            rows.append(patches @ kernel if bias is None else torch.addmm(bias, patches, kernel))
        elif bias is None:
            torch.mm(patches, kernel, out=out[start : start + patches.shape[0]])
        else:
            torch.addmm(bias, patches, kernel, out=out[start : start + patches.shape[0]])
    if out is None:
        rows.append(x.new_zeros(int(padded), c_out))
        return torch.cat(rows)
    out[n] = 0.0
    return out if padded else out[:n]


def dense_subm_conv3x3(
    x: torch.Tensor,
    mask: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The dense equivalent: ``F.conv2d`` with zero padding, zeroed outside ``mask``.

    With ``x`` zero outside the active set, the result equals
    :func:`subm_conv3x3` at the active pixels and is zero elsewhere. With
    ``mask=None`` it is a plain dense 3x3 convolution (every pixel active).

    Args:
        x: ``[B, C_in, H, W]``.
        mask: ``[B, 1, H, W]`` (or broadcastable) bool/float, 1 at active pixels, or ``None``.
        weight: ``[C_out, 3, 3, C_in]`` (spconv layout).
        bias: ``[C_out]`` or ``None``.

    Returns:
        ``[B, C_out, H, W]``.
    """
    out = F.conv2d(x, weight.permute(0, 3, 1, 2), bias, padding=1)
    return out if mask is None else out * mask.to(out.dtype)


class ActiveSet:
    """The active pixels of an ``H x W`` grid, in raster order.

    Attributes:
        coords: ``[N, 2]`` int64 ``(y, x)``, unique, sorted in raster order when
            built by :meth:`from_mask`.
        height, width: the grid's size.
    """

    def __init__(self, coords: torch.Tensor, height: int, width: int) -> None:
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise InputError(
                f"ActiveSet expects [N, 2] (y, x) coordinates, got {tuple(coords.shape)}."
            )
        coords = coords.long()
        if coords.numel() and (
            int(coords.min()) < 0
            or int(coords[:, 0].max()) >= height
            or int(coords[:, 1].max()) >= width
        ):
            raise InputError(f"ActiveSet coordinates fall outside the {height}x{width} grid.")
        self.coords = coords
        self.height = int(height)
        self.width = int(width)
        self._table: torch.Tensor | None = None

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> ActiveSet:
        """The pixels where ``mask`` (``[H, W]`` bool) is true."""
        if mask.ndim != 2:
            raise InputError(
                f"ActiveSet.from_mask expects an [H, W] mask, got {tuple(mask.shape)}."
            )
        return cls(torch.nonzero(mask), mask.shape[0], mask.shape[1])

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    @property
    def device(self) -> torch.device:
        return self.coords.device

    def neighbours(self) -> torch.Tensor:
        """``[N, 9]`` neighbour table (:func:`neighbour_table`), built once."""
        if self._table is None:
            self._table = neighbour_table(self.coords, self.height, self.width)
        return self._table

    def mask(self) -> torch.Tensor:
        """``[H, W]`` bool, true at the active pixels."""
        out = torch.zeros(self.height, self.width, dtype=torch.bool, device=self.device)
        out[self.coords[:, 0], self.coords[:, 1]] = True
        return out

    def gather(self, dense: torch.Tensor) -> torch.Tensor:
        """Rows of ``dense`` (``[H, W, C]`` or ``[H, W]``) at the active pixels (``[N, ...]``)."""
        return dense[self.coords[:, 0], self.coords[:, 1]]

    def scatter(self, values: torch.Tensor, channels_first: bool = True) -> torch.Tensor:
        """``[N, C]`` rows into a zero ``[C, H, W]`` grid (``[H, W, C]`` unless channels first)."""
        c = values.shape[1]
        grid = values.new_zeros(self.height, self.width, c)
        grid[self.coords[:, 0], self.coords[:, 1]] = values
        return grid.permute(2, 0, 1) if channels_first else grid
