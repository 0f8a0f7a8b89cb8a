"""Tests of vfxmatte.refine.sparse_conv: gather + GEMM submanifold conv vs F.conv2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vfxmatte.errors import InputError
from vfxmatte.refine.sparse_conv import (
    OFFSETS,
    ActiveSet,
    dense_subm_conv3x3,
    neighbour_table,
    subm_conv3x3,
)


def dense_oracle(active: ActiveSet, x: torch.Tensor, weight, bias) -> torch.Tensor:
    """Independent reference: plain F.conv2d on the scattered grid, read at the active pixels."""
    grid = torch.zeros(1, x.shape[1], active.height, active.width, dtype=x.dtype)
    ys, xs = active.coords[:, 0], active.coords[:, 1]
    grid[0, :, ys, xs] = x.t()
    out = F.conv2d(grid, weight.permute(0, 3, 1, 2), bias, padding=1)
    return out[0, :, ys, xs].t()


def random_case(h: int, w: int, density: float, c_in: int = 3, c_out: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(h, w, generator=g) < density
    active = ActiveSet.from_mask(mask)
    x = torch.randn(len(active), c_in, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, 3, 3, c_in, generator=g, dtype=torch.float64)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64)
    return active, x, weight, bias


@pytest.mark.parametrize(
    "h, w, density, seed",
    [
        (1, 1, 1.0, 0),
        (1, 9, 0.6, 1),
        (7, 1, 0.6, 2),
        (7, 5, 0.5, 3),
        (31, 17, 0.2, 4),
        (33, 65, 0.05, 5),
        (16, 16, 1.0, 6),
    ],
)
def test_matches_dense_convolution_on_random_active_sets(h, w, density, seed):
    active, x, weight, bias = random_case(h, w, density, seed=seed)
    got = subm_conv3x3(x, active.neighbours(), weight, bias)
    assert got.shape == (len(active), 4)
    torch.testing.assert_close(got, dense_oracle(active, x, weight, bias), rtol=1e-10, atol=1e-10)


def test_border_pixels_see_zero_padding():
    # Every pixel active: the sparse conv is a dense conv with zero padding, borders included.
    h, w = 5, 6
    active = ActiveSet.from_mask(torch.ones(h, w, dtype=torch.bool))
    x = torch.ones(len(active), 1, dtype=torch.float64)
    weight = torch.ones(1, 3, 3, 1, dtype=torch.float64)
    out = subm_conv3x3(x, active.neighbours(), weight).reshape(h, w)
    assert out[0, 0] == 4 and out[0, 3] == 6 and out[2, 3] == 9 and out[h - 1, w - 1] == 4


def test_single_pixel_reads_only_the_centre_tap():
    active = ActiveSet(torch.tensor([[2, 3]]), 4, 5)
    weight = torch.arange(9.0).reshape(1, 3, 3, 1)
    out = subm_conv3x3(torch.tensor([[2.0]]), active.neighbours(), weight, torch.tensor([0.5]))
    assert out.item() == 2.0 * 4.0 + 0.5  # centre tap is weight[0, 1, 1, 0] = 4


def test_empty_active_set():
    active = ActiveSet.from_mask(torch.zeros(6, 7, dtype=torch.bool))
    assert len(active) == 0 and active.neighbours().shape == (0, 9)
    out = subm_conv3x3(
        torch.zeros(0, 3), active.neighbours(), torch.ones(2, 3, 3, 3), torch.ones(2)
    )
    assert out.shape == (0, 2)


def test_neighbour_table_against_brute_force():
    active, *_ = random_case(9, 11, 0.4, seed=7)
    table = neighbour_table(active.coords, 9, 11)
    rows = {tuple(c.tolist()): i for i, c in enumerate(active.coords)}
    n = len(active)
    for i, (y, x) in enumerate(active.coords.tolist()):
        for k, (dy, dx) in enumerate(OFFSETS):
            assert table[i, k].item() == rows.get((y + dy, x + dx), n)


def test_chunking_does_not_change_the_result():
    active, x, weight, bias = random_case(40, 50, 0.3, seed=8)
    whole = subm_conv3x3(x, active.neighbours(), weight, bias, chunk_rows=10**6)
    chunked = subm_conv3x3(x, active.neighbours(), weight, bias, chunk_rows=37)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-12)


def test_gradients_match_the_dense_convolution():
    active, x, weight, bias = random_case(13, 17, 0.35, seed=9)
    grads = []
    for sparse in (True, False):
        x_, w_, b_ = (t.clone().requires_grad_(True) for t in (x, weight, bias))
        if sparse:
            out = subm_conv3x3(x_, active.neighbours(), w_, b_)
        else:
            out = dense_oracle(active, x_, w_, b_)
        ramp = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        (out * ramp).sum().backward()
        grads.append((x_.grad, w_.grad, b_.grad))
    for sparse, dense in zip(*grads, strict=True):
        torch.testing.assert_close(sparse, dense, rtol=1e-10, atol=1e-10)


def test_correct_with_any_thread_count():
    active, x, weight, bias = random_case(64, 80, 0.2, c_in=16, c_out=16, seed=10)
    x, weight, bias = x.float(), weight.float(), bias.float()
    previous = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outs.append(subm_conv3x3(x, active.neighbours(), weight, bias))
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[1], dense_oracle(active, x, weight, bias), rtol=1e-4, atol=1e-4)


def test_dense_reference_is_zero_outside_the_mask():
    active, x, weight, bias = random_case(10, 12, 0.3, seed=11)
    mask = active.mask()[None, None]
    out = dense_subm_conv3x3(active.scatter(x)[None], mask, weight, bias)
    assert torch.all(out[0][:, ~active.mask()] == 0)
    torch.testing.assert_close(
        active.gather(out[0].permute(1, 2, 0)), dense_oracle(active, x, weight, bias)
    )


def test_bad_shapes_are_named():
    active, x, weight, bias = random_case(5, 5, 0.5, c_in=2, seed=12)
    with pytest.raises(InputError, match=r"weight of shape \(4, 3, 3, 2\)"):
        subm_conv3x3(x, active.neighbours(), weight.permute(0, 3, 1, 2), bias)
    with pytest.raises(InputError, match="outside the 5x5 grid"):
        ActiveSet(torch.tensor([[5, 0]]), 5, 5)
    with pytest.raises(InputError, match=r"\[N, 2\]"):
        ActiveSet(torch.zeros(3), 5, 5)
    with pytest.raises(InputError, match=r"\[H, W\] mask"):
        ActiveSet.from_mask(torch.ones(1, 5, 5, dtype=torch.bool))


@pytest.mark.parametrize("grad", [False, True])
def test_padded_rows_give_the_same_result_and_keep_the_zero_row(grad):
    active, x, weight, bias = random_case(21, 23, 0.3, seed=13)
    table = active.neighbours()
    padded = torch.cat([x, x.new_zeros(1, x.shape[1])]).requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        out = subm_conv3x3(padded, table, weight, bias, padded=True, chunk_rows=50)
    assert out.shape == (len(active) + 1, 4) and out.requires_grad == grad
    assert torch.all(out[-1] == 0)
    torch.testing.assert_close(
        out[:-1], subm_conv3x3(x, table, weight, bias), rtol=1e-12, atol=1e-12
    )
    with pytest.raises(InputError, match="one more row of zeros expected"):
        subm_conv3x3(x, table, weight, bias, padded=True)
