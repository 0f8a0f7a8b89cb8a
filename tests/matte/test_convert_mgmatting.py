"""MGMatting release checkpoint -> vfxmatte ``mgm`` weights, from the published key list."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vfxmatte.errors import WeightsError
from vfxmatte.matte.network.backend import load_matting_network
from vfxmatte.matte.network.convert import LICENCE_NOTE, convert_mgmatting
from vfxmatte.weights import load_checkpoint

KEY_LIST = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mgmatting_state_dict.tsv"


def _key_list() -> list[tuple[str, tuple[int, ...], str]]:
    if not KEY_LIST.exists():
        pytest.skip(f"{KEY_LIST} not found (../shared beside the repository)")
    rows = []
    for line in KEY_LIST.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        dims = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
        rows.append((key, dims, dtype))
    return rows


def _release_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with exactly the published keys, shapes and dtypes, random values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, dims, dtype in _key_list():
        if dtype == "int64":
            state[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith(("weight_u", "weight_v")):
            vec = torch.randn(dims, generator=g)
            state[key] = vec / vec.norm()
        elif key.endswith("running_var"):
            state[key] = torch.rand(dims, generator=g) + 0.5
        elif key.endswith(("running_mean", ".bias")):
            state[key] = torch.randn(dims, generator=g) * 0.05
        elif (
            "bn" in key or "downsample.2" in key or "upsample.2" in key or "shortcut" in key
        ) and len(dims) == 1:
            state[key] = torch.rand(dims, generator=g) + 0.5
        else:
            fan_in = math.prod(dims[1:]) if len(dims) > 1 else 1
            state[key] = torch.randn(dims, generator=g) / math.sqrt(fan_in)
    # u, v after a few power iterations, as training leaves them: sigma ~ top singular value
    for key in [k for k in state if k.endswith(".module.weight_bar")]:
        prefix = key[: -len("weight_bar")]
        w = state[key].reshape(state[key].shape[0], -1)
        u = state[prefix + "weight_u"]
        for _ in range(3):
            v = w.t().mv(u)
            v = v / v.norm()
            u = w.mv(v)
            u = u / u.norm()
        state[prefix + "weight_u"], state[prefix + "weight_v"] = u, v
    return state


def test_key_list_is_what_the_docs_say():
    rows = _key_list()
    assert len(rows) == 596
    assert all(k.startswith("module.") for k, _, _ in rows)
    # the tensors that remain after folding SpectralNorm (u, v dropped), running stats included
    kept = [d for k, d, _ in rows if not k.endswith(("weight_u", "weight_v"))]
    assert sum(math.prod(d) if d else 1 for d in kept) == 29_622_191


def test_convert_round_trip_folds_spectral_norm(tmp_path):
    state = _release_state()
    source = tmp_path / "latest_model.pth"
    torch.save(
        {
            "state_dict": state,
            "iter": 100000,
            "loss": 0.01,
            "opt_state_dict": {},
            "lr_state_dict": {},
        },
        source,
    )
    target = tmp_path / "mgm.safetensors"
    convert_mgmatting(source, target)
    checkpoint = load_checkpoint(target, "matte")
    assert checkpoint.metadata["licence"] == LICENCE_NOTE
    assert checkpoint.config["arch"]["confidence_head"] is False
    assert checkpoint.config["arch"]["binary_guidance"] is True
    model, _ = load_matting_network(target)
    own = model.state_dict()
    # every folded weight is weight_bar / (u . W v), computed here in float64 numpy
    folded = 0
    for key in state:
        if not key.endswith(".module.weight_bar"):
            continue
        prefix = key[len("module.") : -len(".module.weight_bar")]
        bar = state[key].double().numpy()
        u = state[f"module.{prefix}.module.weight_u"].double().numpy()
        v = state[f"module.{prefix}.module.weight_v"].double().numpy()
        sigma = u @ (bar.reshape(bar.shape[0], -1) @ v)
        np.testing.assert_allclose(
            own[f"{prefix}.weight"].numpy(), bar / sigma, rtol=1e-5, atol=1e-7
        )
        folded += 1
    assert folded == 67  # every SpectralNorm layer of the release (76 is the BN count)
    for key, value in state.items():
        name = key[len("module.") :]
        if ".module.weight" not in name:
            assert torch.equal(own[name], value), name
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    assert torch.isfinite(out["alpha"]).all()


def test_convert_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        convert_mgmatting(tmp_path / "none.pth", tmp_path / "o.safetensors")
    state = _release_state()
    del state["module.encoder.conv1.module.weight_u"]
    torch.save({"state_dict": state}, tmp_path / "cut.pth")
    with pytest.raises(WeightsError, match="lacks weight_u"):
        convert_mgmatting(tmp_path / "cut.pth", tmp_path / "o.safetensors")
    state = _release_state()
    del state["module.aspp.conv2.weight"]
    torch.save({"state_dict": state}, tmp_path / "short.pth")
    with pytest.raises(WeightsError, match="1 missing: aspp.conv2.weight"):
        convert_mgmatting(tmp_path / "short.pth", tmp_path / "o.safetensors")
    assert not (tmp_path / "o.safetensors").exists()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        convert_mgmatting(tmp_path / "junk.pth", tmp_path / "o.safetensors")
