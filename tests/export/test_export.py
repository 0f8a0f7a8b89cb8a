"""TorchScript export: scripted == eager, fresh-process load, half precision, Cattery folder, CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from vfxmatte.cli import main
from vfxmatte.decontaminate.colour_net import ColourNet
from vfxmatte.export.model import MatteExport, srgb_decode, srgb_encode
from vfxmatte.export.torchscript import build_export, save_torchscript
from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.matte.network.arch import PRNMattingNet
from vfxmatte.matte.network.backend import NetworkMatte
from vfxmatte.matte.network.options import NetworkMatteConfig
from vfxmatte.weights import save_checkpoint

TINY = {
    "name": "custom", "stem": (8, 8, 8), "enc_planes": (8, 8, 16, 16), "enc_blocks": (1, 1, 1, 1),
    "skip_planes": (8, 8, 8, 8, 16), "aspp_mid": 8, "aspp_out": 16, "dec_blocks": (1, 1, 1, 1),
    "head_mid": 8,
}  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    matte = PRNMattingNet(TINY)
    for m in matte.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    colour = ColourNet({"widths": (8, 8, 8, 8)})
    save_checkpoint(folder / "m.safetensors", "matte", {"arch": dataclasses.asdict(matte.arch)},
                    matte.state_dict())  # fmt: skip
    save_checkpoint(folder / "c.safetensors", "colour", {"arch": dataclasses.asdict(colour.arch)},
                    colour.state_dict())  # fmt: skip
    return str(folder / "m.safetensors"), str(folder / "c.safetensors")


def _input(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 4, h, w, generator=g) * 1.5
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    x[0, 3] = (((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2).float()
    return x


def test_srgb_curves_match_the_library():
    x = torch.linspace(0, 1, 1001)
    np.testing.assert_allclose(srgb_encode(x).numpy(), linear_to_srgb(x.numpy()), atol=2e-6)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)).numpy(), x.numpy(), atol=2e-6)


@pytest.mark.parametrize("size", [(37, 53), (150, 90)])
def test_scripted_equals_eager_and_the_layout_is_4_to_4(weights, tmp_path, size):
    module = build_export(*weights, working_size=96, iterations=3)
    x = _input(*size)
    check = save_torchscript(module, tmp_path / "m.pt", example=x)
    assert check.max_abs_diff <= 1e-5 and check.shape == (1, 4, *size)
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        assert torch.equal(loaded(x), module(x))


def test_alpha_matches_the_engine_backend(weights):
    module = build_export(weights[0], working_size=1024, iterations=2)
    x = _input(64, 80)
    with torch.no_grad():
        out = module(x)
    net = NetworkMatte(NetworkMatteConfig(weights=weights[0], iterations=2, device="cpu"))
    display = np.clip(linear_to_srgb(x[0, :3].permute(1, 2, 0).numpy()), 0, 1)
    alpha, _ = net(display, x[0, 3].numpy())
    np.testing.assert_allclose(out[0, 3].numpy(), alpha, atol=1e-4)
    # without a colour network the foreground is the plate where alpha > eps
    fg = out[0, :3]
    seen = out[0, 3] > 1e-3
    assert torch.equal(fg[:, seen], x[0, :3][:, seen]) and not fg[:, ~seen].any()


def test_loads_and_runs_in_a_fresh_process(weights, tmp_path):
    module = build_export(*weights, working_size=64, iterations=2)
    x = _input(50, 70, seed=3)
    save_torchscript(module, tmp_path / "m.pt")
    torch.save(x, tmp_path / "x.pt")
    code = (
        f"import torch; m = torch.jit.load(r'{tmp_path}/m.pt'); x = torch.load(r'{tmp_path}/x.pt');"
        f"torch.save(m(x).detach(), r'{tmp_path}/y.pt')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with torch.no_grad():
        expected = module(x)
    assert torch.allclose(torch.load(tmp_path / "y.pt"), expected, atol=1e-6)


def test_half_precision_follows_the_input(weights, tmp_path):
    module = build_export(*weights, working_size=64, iterations=2)
    save_torchscript(module, tmp_path / "m.pt")
    half = torch.jit.load(str(tmp_path / "m.pt")).half()
    x = _input(48, 64)
    with torch.no_grad():
        y = half(x.half())
        ref = module(x)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    assert (y[:, 3].float() - ref[:, 3]).abs().mean() < 0.02


def test_cattery_folder_and_cli(weights, tmp_path, capsys):
    folder = tmp_path / "cattery"
    rc = main(["export", "--matte-weights", weights[0], "--colour-weights", weights[1],
               "--working-size", "64", "--nuke", str(folder)])  # fmt: skip
    assert rc == 0
    info = json.loads((folder / "export.json").read_text())
    assert info["channels_in"] == ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"]
    assert info["attributes"] == {"working_size": 64, "iterations": 0, "alpha_epsilon": 0.001}
    assert info["colour_network"] is True
    guide = (folder / "CATTERY.md").read_text()
    assert "CatFileCreator" in guide and str((folder / "vfxmatte_matte.pt").resolve()) in guide
    assert torch.jit.load(str(folder / "vfxmatte_matte.pt"))(_input(32, 32)).shape == (1, 4, 32, 32)
    assert main(["export", "--matte-weights", weights[0], "-o", str(tmp_path / "x.pt")]) == 0
    assert (tmp_path / "x.pt").exists()


def test_cli_errors(weights, tmp_path, capsys):
    assert main(["export", "--matte-weights", weights[0]]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert main(["export", "--matte-weights", weights[0], "-o", "x.pt", "--working-size", "8"]) == 2
    assert "--working-size" in capsys.readouterr().err
    assert main(["export", "--matte-weights", str(tmp_path / "none.safetensors"),
                 "-o", str(tmp_path / "x.pt")]) == 2  # fmt: skip
    assert not (tmp_path / "x.pt").exists()


def test_weights_cli(weights, tmp_path, capsys):
    assert main(["weights", "info", weights[0]]) == 0
    out = capsys.readouterr().out
    assert "matte network" in out and '"name": "custom"' in out
    assert main(["weights", "convert-mgmatting", "x.pth", str(tmp_path / "o.safetensors")]) == 2
    assert "--accept-licence" in capsys.readouterr().err


def test_export_module_runs_without_a_colour_network():
    torch.manual_seed(0)
    module = MatteExport(PRNMattingNet(TINY), None, working_size=64)
    assert module(_input(40, 40)).shape == (1, 4, 40, 40)


def _refine_checkpoint(folder, feature_channels):
    from vfxmatte.refine.sparse_net import SparseRefineArch, SparseRefineNet

    torch.manual_seed(2)
    arch = SparseRefineArch(width=8, blocks=2, feature_channels=feature_channels)
    net = SparseRefineNet(arch)
    path = folder / f"r{feature_channels}.safetensors"
    save_checkpoint(path, "refine", dataclasses.asdict(arch), net.state_dict())
    return str(path), net


@pytest.mark.parametrize("feature_channels", [0, 8])
def test_export_refine_equals_the_sparse_torch_path(tmp_path, feature_channels):
    from vfxmatte.export.refine import ExportRefine
    from vfxmatte.refine.sparse_conv import ActiveSet
    from vfxmatte.refine.sparse_net import sparse_inputs

    _, net = _refine_checkpoint(tmp_path, feature_channels)
    scripted = torch.jit.script(ExportRefine(net.eval(), 0.3))
    g = torch.Generator().manual_seed(5)
    img, a, e = (torch.rand(1, c, 41, 53, generator=g) for c in (3, 1, 1))
    feats = torch.rand(1, feature_channels, 21, 27, generator=g)
    out = scripted(img, a, e, feats)
    active = ActiveSet.from_mask(e[0, 0] > 0.3)
    with torch.no_grad():
        inputs = sparse_inputs(img[0].permute(1, 2, 0), a[0, 0], e[0, 0], active,
                               feats if feature_channels else None)  # fmt: skip
        expected = a[0, 0].clone()
        expected[active.coords[:, 0], active.coords[:, 1]] = net(inputs, active)
    assert torch.allclose(out[0, 0], expected, atol=1e-6)


def test_export_with_refine_matches_the_engine_stages(weights, tmp_path):
    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.stages import ColourContext, Stages
    from vfxmatte.io.frame import Frame

    refine_path, _ = _refine_checkpoint(tmp_path, 8)
    module = build_export(weights[0], working_size=1024, iterations=2,
                          refine_weights=refine_path, refine_tau=0.3)  # fmt: skip
    x = _input(64, 80, seed=4)
    scripted_check = save_torchscript(module, tmp_path / "m.pt", example=x)
    assert scripted_check.max_abs_diff <= 1e-5
    with torch.no_grad():
        exported = module(x)[0, 3].numpy()
    config = PipelineConfig()
    config.matte.backend = "network"
    config.matte.network.weights = weights[0]
    config.matte.network.iterations = 2
    config.matte.network.device = "cpu"
    config.refine.backend = "sparse"
    config.refine.sparse.weights = refine_path
    config.refine.sparse.tau = 0.3
    config.refine.sparse.device = "cpu"
    config.decontaminate.backend = "none"
    linear = x[0, :3].permute(1, 2, 0).numpy()
    frame = Frame(number=1, pixels=linear, channels=["R", "G", "B"], metadata={}, path="f.exr")
    colour = ColourContext.resolve("lin_rec709", frame)
    display = colour.display(linear)
    result = Stages(config, colour).process(frame, x[0, 3].numpy(), display)
    # same network, same decoding, same refiner: only float rounding of the sRGB curve differs
    assert np.abs(result.alpha - exported).max() < 1e-3


def test_refiner_in_half_precision_matches_float32(tmp_path):
    """The refiner of a half-cast export: its alpha agrees with float32 (it was off by 0.9)."""
    from vfxmatte.export.refine import ExportRefine

    _, net = _refine_checkpoint(tmp_path, 8)
    refine = ExportRefine(net.eval(), 0.3)
    g = torch.Generator().manual_seed(9)
    h, w = 120, 329  # half grid coordinates are 0.25 px apart at x ~ 300: bilinear goes wrong
    img, a = torch.rand(1, 3, h, w, generator=g), torch.rand(1, 1, h, w, generator=g)
    e = (torch.rand(1, 1, h, w, generator=g) * 0.6).half().float()  # same selection in both
    feats = torch.randn(1, 8, h, w, generator=g)
    with torch.no_grad():
        ref = refine(img, a, e, feats)
        half = copy.deepcopy(refine).half()(img.half(), a.half(), e.half(), feats.half())
    assert half.dtype == torch.float16
    refined = e[0, 0] > 0.3
    assert refined.float().mean() > 0.3
    diff = (half.float() - ref).abs()[0, 0]
    # what is left is the rounding of the half inputs themselves (float16: 11 bits)
    assert diff[refined].max() < 0.05 and diff[~refined].max() < 1e-3


def test_whole_export_with_refiner_in_half_matches_float32(weights, tmp_path):
    refine_path, _ = _refine_checkpoint(tmp_path, 8)
    module = build_export(weights[0], working_size=512, refine_weights=refine_path,
                          refine_tau=0.3)  # fmt: skip
    x = _input(150, 329, seed=6)
    save_torchscript(module, tmp_path / "m.pt", example=x)
    half = torch.jit.load(str(tmp_path / "m.pt")).half()
    with torch.no_grad():
        ref = module(x)[0, 3]
        out = half(x.half())[0, 3].float()
    diff = (out - ref).abs()
    # pixels near tau may be refined in one precision and not in the other: a few outliers
    assert diff.mean() < 2e-3 and torch.quantile(diff.flatten(), 0.995) < 0.03


def _identity_colour(folder):
    """A colour network whose prediction is its input (zero residual)."""
    colour = ColourNet({"widths": (8, 8, 8, 8)})
    torch.nn.init.zeros_(colour.out.weight)
    torch.nn.init.zeros_(colour.out.bias)
    path = folder / "identity_colour.safetensors"
    save_checkpoint(path, "colour", {"arch": dataclasses.asdict(colour.arch)},
                    colour.state_dict())  # fmt: skip
    return str(path)


def test_one_exposure_rule_keeps_highlights_above_1_in_export_and_cli(weights, tmp_path):
    """Scene-linear highlights in the soft band come back at their level in both paths."""
    from vfxmatte.decontaminate.network import NetworkForeground, NetworkForegroundConfig

    colour = _identity_colour(tmp_path)
    h, w = 64, 96
    rng = np.random.default_rng(3)
    rgb = (0.1 + 0.3 * rng.random((h, w, 3))).astype(np.float32)
    rgb[30:34, 40:45] = np.linspace(1.28, 1.53, 5, dtype=np.float32)[None, :, None]  # 0.3%
    alpha = np.full((h, w), 0.5, np.float32)  # all soft band
    module = build_export(weights[0], colour, working_size=128)
    with torch.no_grad():
        fg_export = module._foreground(torch.from_numpy(rgb).permute(2, 0, 1)[None],
                                       torch.from_numpy(alpha)[None, None])  # fmt: skip
    fg_export = fg_export[0].permute(1, 2, 0).numpy()
    fg_cli = NetworkForeground(NetworkForegroundConfig(weights=colour, device="cpu"))(rgb, alpha)
    for fg in (fg_export, fg_cli):
        np.testing.assert_allclose(fg[30:34, 40:45], rgb[30:34, 40:45], rtol=1e-4)
        np.testing.assert_allclose(fg, rgb, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fg_export, fg_cli, rtol=1e-4, atol=1e-5)
