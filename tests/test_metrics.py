"""Tests of vfxmatte.metrics against hand-computed values and independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vfxmatte import metrics
from vfxmatte.errors import InputError

# pred - gt has |d| = [[0, .5, 0], [.25, 0, 0], [0, 0, .75]]:
# sum |d| = 1.5, sum d^2 = .25 + .0625 + .5625 = .875 over 9 pixels.
PRED = np.array([[0.0, 0.5, 1.0], [0.25, 0.0, 0.0], [0.0, 0.0, 0.75]])
GT = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
TOP_ROW = np.array([[1, 1, 1], [0, 0, 0], [0, 0, 0]], dtype=bool)


def _smooth_pair(seed: int = 0, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    gt = np.clip(1.5 - 3.0 * np.hypot(yy - 0.5, xx - 0.5), 0.0, 1.0)
    pred = np.clip(gt + rng.normal(0.0, 0.1, gt.shape), 0.0, 1.0)
    return pred, gt


# ----------------------------------------------------------------------- SAD / MSE / MAD


def test_sad_mse_mad_whole_image() -> None:
    assert metrics.sad(PRED, GT) == pytest.approx(1.5 / 1000)
    assert metrics.mad(PRED, GT) == pytest.approx(1.5 / 9)
    assert metrics.mse(PRED, GT) == pytest.approx(0.875 / 9)


def test_sad_mse_mad_with_mask() -> None:
    # Top row only: |d| = [0, .5, 0].
    assert metrics.sad(PRED, GT, TOP_ROW) == pytest.approx(0.5 / 1000)
    assert metrics.mad(PRED, GT, TOP_ROW) == pytest.approx(0.5 / 3)
    assert metrics.mse(PRED, GT, TOP_ROW.astype(np.float32)) == pytest.approx(0.25 / 3)


def test_float32_input_gives_same_values() -> None:
    assert metrics.sad(PRED.astype(np.float32), GT.astype(np.float32)) == pytest.approx(
        metrics.sad(PRED, GT)
    )


def test_empty_mask_reports_zero() -> None:
    empty = np.zeros((3, 3), dtype=bool)
    assert metrics.sad(PRED, GT, empty) == 0.0
    assert metrics.mse(PRED, GT, empty) == 0.0
    assert metrics.mad(PRED, GT, empty) == 0.0


def test_mask_with_fractional_values_is_rejected() -> None:
    with pytest.raises(InputError, match="only 0 and 1"):
        metrics.sad(PRED, GT, np.full((3, 3), 0.5))


# ----------------------------------------------------------------------- Grad


def _explicit_kernel(sigma: float) -> np.ndarray:
    # Literal transcription of gaussgradient.m (1-based loop indices).
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    size = 2 * half + 1
    h = np.zeros((size, size))
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            u, v = i - half - 1, j - half - 1
            g_u = math.exp(-(u**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
            g_v = math.exp(-(v**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
            h[i - 1, j - 1] = g_u * (-v * g_v / sigma**2)
    return h / math.sqrt(float(np.sum(np.abs(h) * np.abs(h))))


def _explicit_convolve_replicate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # out(y, x) = sum_ab k[a, b] * I(y - (a - r), x - (b - r)), borders replicated.
    r = kernel.shape[0] // 2
    padded = np.pad(image, r, mode="edge")
    out = np.zeros_like(image)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            for a in range(kernel.shape[0]):
                for b in range(kernel.shape[1]):
                    out[y, x] += kernel[a, b] * padded[y + 2 * r - a, x + 2 * r - b]
    return out


def test_kernel_matches_matlab_formula() -> None:
    kernel = metrics.gaussian_derivative_kernel(1.4)
    assert kernel.shape == (9, 9)  # half size ceil(1.4 * sqrt(-2 log(0.0351))) = ceil(3.62) = 4
    np.testing.assert_allclose(kernel, _explicit_kernel(1.4), rtol=0, atol=1e-15)
    assert np.sum(kernel**2) == pytest.approx(1.0)


def test_gauss_gradient_matches_explicit_convolution() -> None:
    image = np.random.default_rng(3).random((7, 6))
    gx, gy = metrics.gauss_gradient(image, 1.4)
    kernel = _explicit_kernel(1.4)
    np.testing.assert_allclose(gx, _explicit_convolve_replicate(image, kernel), atol=1e-12)
    np.testing.assert_allclose(gy, _explicit_convolve_replicate(image, kernel.T), atol=1e-12)


def test_gauss_gradient_of_horizontal_ramp_points_along_x() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 20), (20, 1))
    gx, gy = metrics.gauss_gradient(ramp)
    assert (gx[5:-5, 5:-5] > 0).all()
    np.testing.assert_allclose(gy, 0.0, atol=1e-12)


def test_grad_identical_is_zero() -> None:
    pred, gt = _smooth_pair()
    assert metrics.grad(gt, gt) == 0.0


def test_grad_ignores_constant_offset() -> None:
    # The derivative kernel sums to zero, so adding a constant leaves gradients unchanged.
    _, gt = _smooth_pair()
    gt = gt * 0.5
    assert metrics.sad(gt + 0.3, gt) > 0.0
    assert metrics.grad(gt + 0.3, gt) == pytest.approx(0.0, abs=1e-15)


def test_grad_positive_symmetric_and_masked() -> None:
    pred, gt = _smooth_pair()
    full = metrics.grad(pred, gt)
    assert full > 0.0
    assert metrics.grad(gt, pred) == pytest.approx(full)
    mask = np.zeros(gt.shape, dtype=bool)
    mask[:, :12] = True
    amp_p = np.hypot(*metrics.gauss_gradient(pred))
    amp_g = np.hypot(*metrics.gauss_gradient(gt))
    expected = np.sum(((amp_p - amp_g) ** 2)[:, :12]) / 1000
    assert metrics.grad(pred, gt, mask) == pytest.approx(expected)
    assert metrics.grad(pred, gt, mask) < full


# ----------------------------------------------------------------------- Conn


def test_conn_identical_is_zero() -> None:
    pred, gt = _smooth_pair()
    assert metrics.conn(gt, gt) == 0.0
    assert metrics.conn(pred, pred) == 0.0


def test_conn_blob_missed_by_pred() -> None:
    # gt has a second blob at x = 3 that pred misses. For every threshold the
    # intersection is {0, 1}, so pixels 2, 3 leave omega at t = 0.1: l = [1, 1, 0, 0].
    # d_gt = [0, 0, 0, 1] -> phi_gt = [1, 1, 1, 0]; d_pred = 0 -> phi_pred = 1.
    # Error = 1 / 1000.
    gt = np.array([[1.0, 1.0, 0.0, 1.0]])
    pred = np.array([[1.0, 1.0, 0.0, 0.0]])
    assert metrics.conn(pred, gt) == pytest.approx(1e-3)
    assert metrics.conn(pred, gt, np.array([[1, 1, 1, 0]])) == 0.0


def test_conn_fractional_disconnected_pixel() -> None:
    # Pixel 3 is in the intersection up to t = 0.2 but never in the largest component
    # {0, 1}: l = 0. d_gt = .5 -> phi .5; d_pred = .2 -> phi .8. Error = .3 / 1000.
    gt = np.array([[1.0, 1.0, 0.0, 0.5]])
    pred = np.array([[1.0, 1.0, 0.0, 0.2]])
    assert metrics.conn(pred, gt) == pytest.approx(0.3e-3)


def test_conn_uses_4_connectivity() -> None:
    # (2, 2) touches the 2x2 block only diagonally. With 4-connectivity it is its own
    # component, leaves omega at t = .1, l = 0: phi_gt = 1 - .5, phi_pred = 1 - .6,
    # error .1 / 1000. (8-connectivity would give l = .5 and error 0.)
    gt = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    pred = gt.copy()
    pred[2, 2] = 0.6
    assert metrics.conn(pred, gt) == pytest.approx(1e-4)


def test_conn_ties_pick_first_component_in_column_major_order() -> None:
    # A = (0, 2) and B = (2, 0) are single-pixel components, tied up to t = .5.
    # MATLAB's bwconncomp numbers them column-major, so omega = B and A gets l = 0:
    # phi_gt(A) = .5, phi_pred(A) = .4, error .1 / 1000. (Row-major order would
    # choose A, give l(A) = .5 and error 0.)
    gt = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = gt.copy()
    pred[0, 2] = 0.6
    assert metrics.conn(pred, gt) == pytest.approx(1e-4)


def test_conn_rejects_bad_step() -> None:
    with pytest.raises(InputError, match="step must be in"):
        metrics.conn(PRED, GT, step=0.0)


# ----------------------------------------------------------------------- dtSSD / fg


def test_dtssd_zero_when_pred_equals_gt() -> None:
    frames = [np.full((4, 4), v) for v in (0.0, 0.3, 0.9)]
    assert metrics.dtssd(frames, frames) == 0.0


def test_dtssd_ignores_constant_temporal_offset() -> None:
    gts = [np.full((2, 2), v) for v in (0.1, 0.4, 0.2)]
    preds = [g + 0.5 for g in gts]
    assert metrics.dtssd(preds, gts) == pytest.approx(0.0)


def test_dtssd_two_frame_hand_value() -> None:
    # Only pixel (0, 0) changes, by .5, in pred: sqrt(.25 / 4) * 100 = 25.
    zero = np.zeros((2, 2))
    moved = np.array([[0.5, 0.0], [0.0, 0.0]])
    assert metrics.dtssd_step(moved, zero, zero, zero) == pytest.approx(25.0)
    assert metrics.dtssd([zero, moved], [zero, zero]) == pytest.approx(25.0)
    # Steps 25 then 0: mean over t >= 1 is 12.5.
    assert metrics.dtssd([zero, moved, moved], [zero] * 3) == pytest.approx(12.5)


def test_dtssd_errors() -> None:
    zero = np.zeros((2, 2))
    with pytest.raises(InputError, match="at least 2 frames"):
        metrics.dtssd([zero], [zero])
    with pytest.raises(InputError, match="same number of frames"):
        metrics.dtssd([zero, zero], [zero])
    with pytest.raises(InputError, match="consecutive frames"):
        metrics.dtssd_step(zero, np.zeros((3, 3)), zero, np.zeros((3, 3)))


def test_fg_error_hand_value() -> None:
    # Pixels with gt alpha > 0: (0, 0) and (1, 0). Squared errors per channel
    # .01 .04 .09 and .09 0 0: mean over 6 values = .23 / 6.
    gt_alpha = np.array([[1.0, 0.0], [0.5, 0.0]])
    pred_fg = np.zeros((2, 2, 3))
    gt_fg = np.ones((2, 2, 3))
    gt_fg[0, 0] = (0.1, 0.2, 0.3)
    gt_fg[1, 0] = (0.3, 0.0, 0.0)
    assert metrics.fg_error(pred_fg, gt_fg, gt_alpha) == pytest.approx(0.23 / 6)
    assert metrics.fg_error(pred_fg, gt_fg, np.zeros((2, 2))) == 0.0


def test_fg_error_shape_check() -> None:
    with pytest.raises(InputError, match=r"pred_fg must have shape \(2, 2\) x C"):
        metrics.fg_error(np.zeros((3, 3, 3)), np.zeros((2, 2, 3)), np.zeros((2, 2)))


# ----------------------------------------------------------------------- input errors


def test_shape_mismatch_message() -> None:
    with pytest.raises(InputError, match=r"same shape; found \(3, 3\) and \(2, 2\)"):
        metrics.sad(PRED, np.zeros((2, 2)))


def test_nan_message() -> None:
    bad = PRED.copy()
    bad[1, 1] = np.nan
    with pytest.raises(InputError, match="pred must contain finite values; found NaN"):
        metrics.mse(bad, GT)


def test_uint8_and_range_messages() -> None:
    with pytest.raises(InputError, match="found dtype uint8 .divide 8-bit mattes by 255"):
        metrics.grad((PRED * 255).astype(np.uint8), GT)
    with pytest.raises(InputError, match=r"gt must lie in \[0, 1\]; found values in \[0, 2\]"):
        metrics.conn(PRED, GT * 2)
    with pytest.raises(InputError, match="shape H x W; found shape"):
        metrics.mad(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)))


def test_hwc1_alpha_is_accepted() -> None:
    assert metrics.sad(PRED[..., None], GT) == pytest.approx(1.5e-3)


# ----------------------------------------------------------------------- accumulator


def test_evaluate_frame_keys_and_values() -> None:
    row = metrics.evaluate_frame(PRED, GT, TOP_ROW)
    assert list(row) == ["SAD", "MSE", "MAD", "Grad", "Conn"]
    assert row["SAD"] == pytest.approx(0.5e-3)
    assert row["Conn"] == metrics.conn(PRED, GT, TOP_ROW)


def test_accumulator_streams_dtssd_and_means() -> None:
    zero = np.zeros((2, 2))
    moved = np.array([[0.5, 0.0], [0.0, 0.0]])
    fg = np.zeros((2, 2, 3))
    acc = metrics.MetricsAccumulator()
    acc.add(1001, zero, zero, pred_fg=fg, gt_fg=fg)
    acc.add(1002, moved, zero)
    acc.add(1003, moved, zero)
    assert [r.frame for r in acc.rows] == [1001, 1002, 1003]
    assert "dtSSD" not in acc.rows[0].values
    assert [r.values["dtSSD"] for r in acc.rows[1:]] == pytest.approx([25.0, 0.0])
    mean = acc.mean()
    assert mean["dtSSD"] == pytest.approx(metrics.dtssd([zero, moved, moved], [zero] * 3))
    assert mean["SAD"] == pytest.approx((0.0 + 0.5e-3 + 0.5e-3) / 3)
    assert mean["FgMSE"] == 0.0
    table = acc.table().splitlines()
    assert table[0].split() == ["frame", "SAD", "MSE", "MAD", "Grad", "Conn", "dtSSD", "FgMSE"]
    assert table[1].split()[0] == "1001" and table[1].split()[6] == "-"
    assert table[-1].split()[0] == "mean"


def test_accumulator_keeps_its_own_copy_of_the_previous_frame() -> None:
    # A reader that reuses one buffer must not turn dtSSD into zero.
    buffer = np.zeros((2, 2))
    acc = metrics.MetricsAccumulator()
    acc.add(1, buffer, np.zeros((2, 2)))
    buffer[0, 0] = 0.5
    row = acc.add(2, buffer, np.zeros((2, 2)))
    assert row.values["dtSSD"] == pytest.approx(25.0)


def test_accumulator_rejects_out_of_order_and_half_fg() -> None:
    acc = metrics.MetricsAccumulator()
    acc.add(5, PRED, GT)
    with pytest.raises(InputError, match="increasing order; found 5 after 5"):
        acc.add(5, PRED, GT)
    with pytest.raises(InputError, match="given together"):
        acc.add(6, PRED, GT, pred_fg=np.zeros((3, 3, 3)))


def test_format_table_empty_and_missing() -> None:
    text = metrics.format_table([metrics.FrameRow(1, {"SAD": 0.5}), metrics.FrameRow(2, {})])
    assert text.splitlines() == ["frame  SAD", "    1  0.5", "    2    -"]
