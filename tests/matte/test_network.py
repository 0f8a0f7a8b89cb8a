"""The PRN matting network: shapes, determinism, gradients, fusion, decoding, backend."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vfxmatte.errors import InputError, WeightsError
from vfxmatte.matte.network.arch import ARCHITECTURES, PRNMattingNet
from vfxmatte.matte.network.backend import NetworkMatte
from vfxmatte.matte.network.decode import commit_schedule, iterative_decode
from vfxmatte.matte.network.options import NetworkMatteConfig
from vfxmatte.matte.network.prn import ellipse_kernel, pad_to_stride, progressive_fuse
from vfxmatte.weights import save_checkpoint

TINY = {
    "name": "custom",
    "stem": (8, 8, 8),
    "enc_planes": (8, 16, 16, 16),
    "enc_blocks": (1, 1, 1, 1),
    "skip_planes": (8, 8, 8, 16, 16),
    "aspp_mid": 8,
    "aspp_out": 16,
    "dec_blocks": (1, 1, 1, 1),
    "head_mid": 8,
}


def _weights(tmp_path, arch=None, seed=0, name="net.safetensors"):
    torch.manual_seed(seed)
    model = PRNMattingNet(arch or TINY)
    for m in model.modules():  # non-trivial BN so every branch contributes
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    path = tmp_path / name
    import dataclasses

    save_checkpoint(path, "matte", {"arch": dataclasses.asdict(model.arch)}, model.state_dict())
    return path, model


def _frame(h=53, w=70, seed=1):
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3), dtype=np.float32)
    yy, xx = np.mgrid[:h, :w]
    guide = (((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2).astype(np.float32)
    return image, guide


def test_presets_have_the_sizes_the_docs_state():
    counts = {k: sum(p.numel() for p in PRNMattingNet(k).parameters()) for k in ARCHITECTURES}
    assert 2_000_000 < counts["small"] < 6_000_000
    assert counts["mgm"] == 29_606_500  # plus running stats: the released 29.6 M tensors


@pytest.mark.parametrize("size", [(53, 70), (1, 1), (97, 31)])
def test_backend_shapes_at_odd_sizes_and_range(tmp_path, size):
    path, _ = _weights(tmp_path)
    net = NetworkMatte(NetworkMatteConfig(weights=str(path), iterations=2, device="cpu"))
    image, guide = _frame(*size)
    alpha, confidence = net(image, guide)
    assert alpha.shape == size and confidence.shape == size
    assert alpha.dtype == np.float32 and confidence.dtype == np.float32
    assert np.all((alpha >= 0) & (alpha <= 1)) and np.all((confidence >= 0) & (confidence <= 1))


def test_working_size_scales_down_and_back(tmp_path):
    path, _ = _weights(tmp_path)
    net = NetworkMatte(NetworkMatteConfig(weights=str(path), working_size=64, device="cpu"))
    image, guide = _frame(90, 160)
    result = net.matte(image, guide)
    assert result.alpha.shape == (90, 160)
    assert result.scale == pytest.approx(0.4)
    assert result.features.shape[-2:] == (36, 64)


def test_deterministic(tmp_path):
    path, _ = _weights(tmp_path)
    image, guide = _frame()
    a = NetworkMatte(NetworkMatteConfig(weights=str(path), device="cpu"))(image, guide)
    b = NetworkMatte(NetworkMatteConfig(weights=str(path), device="cpu"))(image, guide)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = PRNMattingNet(TINY)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    model.train()
    image = torch.rand(2, 3, 64, 64)
    guide = (torch.rand(2, 1, 64, 64) > 0.5).float()
    out = model(image, guide)
    loss = sum(out[k].mean() for k in ("alpha_os8", "alpha_os4", "alpha_os1", "error"))
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


def test_fusion_rule_on_hand_made_side_outputs():
    h, w = 64, 64
    os8 = torch.zeros(1, 1, h, w)
    os8[..., 20:40, 20:40] = 1.0
    os8[..., 30, 30] = 0.5  # one uncertain pixel
    os4 = torch.full((1, 1, h, w), 0.25)
    os4[..., 30, 36] = 0.6  # uncertain OS4 value inside the 15x15 ellipse around (30, 30)
    os1 = torch.full((1, 1, h, w), 0.75)
    alpha, g4, g1 = progressive_fuse(os8, os4, os1, ellipse_kernel(15), ellipse_kernel(7))
    ell15 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    ell7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    o8 = os8[0, 0].numpy()
    unc8 = ((o8 > 1 / 255) & (o8 < 1 - 1 / 255)).astype(np.uint8)
    exp_g4 = cv2.dilate(unc8, ell15)
    mid = np.where(exp_g4 > 0, os4[0, 0].numpy(), o8)
    unc = ((mid > 1 / 255) & (mid < 1 - 1 / 255)).astype(np.uint8)
    exp_g1 = cv2.dilate(unc, ell7)
    expected = np.where(exp_g1 > 0, 0.75, mid)
    assert np.array_equal(g4[0, 0].numpy(), exp_g4.astype(np.float32))
    assert np.array_equal(g1[0, 0].numpy(), exp_g1.astype(np.float32))
    assert np.allclose(alpha[0, 0].numpy(), expected)
    assert exp_g4.sum() == (ell15 > 0).sum()  # the whole ellipse, nothing else


def test_pad_to_stride_keeps_the_image_at_the_returned_offset():
    x = torch.rand(1, 3, 53, 70)
    padded, (top, left, h, w) = pad_to_stride(x)
    assert padded.shape[-2] % 32 == 0 and padded.shape[-1] % 32 == 0
    assert torch.equal(padded[..., top : top + h, left : left + w], x)


def test_iterative_decoding_commits_monotonically_lowest_error_first():
    torch.manual_seed(0)
    coarse = (torch.rand(1, 1, 16, 16) > 0.5).float()
    calls = []

    def predict(mask):
        calls.append(mask.clone())
        step = len(calls)
        alpha = torch.full_like(mask, step / 10.0)  # a different value per step
        error = torch.linspace(0, 1, mask.numel()).view_as(mask)
        return alpha, error

    alpha, error, trace = iterative_decode(predict, coarse, steps=4, schedule="cosine")
    assert trace.committed == sorted(trace.committed) and trace.committed[-1] == 256
    expected = [round(commit_schedule(t, 4) * 256) for t in (1, 2, 3)] + [256]
    assert trace.committed == expected
    flat = alpha.view(-1)
    # lowest error first: pixel i was committed at the first step whose count exceeds i
    for i in range(256):
        step = next(t for t, c in enumerate(trace.committed, 1) if c > i)
        assert flat[i] == pytest.approx(step / 10.0)
    # the mask fed back holds committed values and the coarse mask elsewhere
    fed = calls[1].view(-1)
    c1 = trace.committed[0]
    assert torch.allclose(fed[:c1], torch.full((c1,), 0.1))
    assert torch.equal(fed[c1:], coarse.view(-1)[c1:])


def test_iterative_decoding_with_the_network_changes_nothing_committed(tmp_path):
    _, model = _weights(tmp_path)
    model.eval()
    image = torch.rand(1, 3, 64, 64)
    coarse = torch.zeros(1, 1, 64, 64)
    coarse[..., 16:48, 16:48] = 1
    states = []

    def predict(mask):
        states.append(mask.clone())
        out = model(image, mask)
        return out["alpha"], out["error"]

    with torch.no_grad():
        alpha, _, trace = iterative_decode(predict, coarse, steps=3)
    assert trace.committed[-1] == 64 * 64
    # once a pixel leaves the coarse state its value stays fixed
    changed_1 = states[1] != coarse
    assert torch.equal(states[2][changed_1], states[1][changed_1])
    assert torch.equal(alpha[changed_1], states[1][changed_1])


def test_weights_errors_are_clear(tmp_path, monkeypatch):
    import vfxmatte.weights

    monkeypatch.setenv("VFXMATTE_HOME", str(tmp_path))
    monkeypatch.setitem(vfxmatte.weights.SHIPPED, "matte", "missing.safetensors")
    with pytest.raises(WeightsError, match="needs matte.network.weights"):
        NetworkMatte(NetworkMatteConfig(weights=""))
    path = tmp_path / "r.safetensors"
    save_checkpoint(path, "refine", {}, {"w": torch.zeros(1)})
    with pytest.raises(WeightsError, match="'refine' network, expected 'matte'"):
        NetworkMatte(NetworkMatteConfig(weights=str(path)))
    other, _ = _weights(tmp_path, name="tiny.safetensors")
    from vfxmatte.weights import load_checkpoint

    ck = load_checkpoint(other)
    ck.state_dict.pop("decoder.refine_OS1.3.bias")
    save_checkpoint(tmp_path / "cut.safetensors", "matte", ck.config, ck.state_dict)
    with pytest.raises(WeightsError, match="1 missing: decoder.refine_OS1.3.bias"):
        NetworkMatte(NetworkMatteConfig(weights=str(tmp_path / "cut.safetensors")))


def test_bad_frames_are_refused(tmp_path):
    path, _ = _weights(tmp_path)
    net = NetworkMatte(NetworkMatteConfig(weights=str(path), device="cpu"))
    image, guide = _frame()
    with pytest.raises(InputError, match="but the image is"):
        net(image, guide[:-1])
    image[3, 3, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        net(image, guide)


def test_binary_guidance_ignores_soft_values():
    torch.manual_seed(0)
    model = PRNMattingNet({**TINY, "binary_guidance": True}).eval()
    image = torch.rand(1, 3, 64, 64)
    soft = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        a = model(image, soft)["alpha"]
        b = model(image, (soft >= 0.5).float())["alpha"]
    assert torch.equal(a, b)
