"""The checkpoint format: round trips, kinds, strict loading, damaged files."""

from __future__ import annotations

import pytest
import torch

from vfxmatte.errors import WeightsError
from vfxmatte.weights import load_checkpoint, load_state_dict, save_checkpoint


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.BatchNorm2d(8))


@pytest.mark.parametrize("name", ["w.safetensors", "w.pt"])
def test_round_trip_keeps_tensors_config_and_metadata(tmp_path, name):
    net = _net()
    path = tmp_path / name
    save_checkpoint(path, "matte", {"width": 8, "size": "small"}, net.state_dict(), {"step": 12})
    ck = load_checkpoint(path, "matte")
    assert ck.kind == "matte" and ck.config == {"width": 8, "size": "small"}
    assert ck.metadata["step"] == "12"
    other = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.BatchNorm2d(8))
    load_state_dict(other, ck.state_dict)
    for key, value in net.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


def test_wrong_kind_is_named(tmp_path):
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, "refine", {}, _net().state_dict())
    with pytest.raises(WeightsError, match="'refine' network, expected 'matte'"):
        load_checkpoint(path, "matte")


def test_missing_unexpected_and_shape_keys_are_listed():
    state = _net().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["1.bias"]
    state["0.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(WeightsError) as info:
        load_state_dict(_net(), state, source="x.safetensors")
    text = str(info.value)
    assert "1 missing: 1.bias" in text and "1 unexpected: extra.weight" in text
    assert "0.weight (8, 3, 3, 3) vs (8, 4, 3, 3)" in text


def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, "matte", {}, _net().state_dict())
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "cut.safetensors")
    (tmp_path / "tiny.pt").write_bytes(b"PK")
    with pytest.raises(WeightsError, match="truncated"):
        load_checkpoint(tmp_path / "tiny.pt")
    torch.save({"state_dict": _net().state_dict()}, tmp_path / "foreign.pth")
    with pytest.raises(WeightsError, match="not a vfxmatte checkpoint"):
        load_checkpoint(tmp_path / "foreign.pth")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(WeightsError, match="without vfxmatte metadata"):
        load_checkpoint(tmp_path / "bare.safetensors")
