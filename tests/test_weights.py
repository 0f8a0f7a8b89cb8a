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


def test_cast_halves_the_file_and_loads_into_float32(tmp_path, capsys):
    from vfxmatte.cli import main

    net = _net()
    with torch.no_grad():
        net[1].running_var.fill_(3.0)
    source = tmp_path / "w.safetensors"
    save_checkpoint(source, "refine", {"width": 8}, net.state_dict(), {"step": 5})
    out = tmp_path / "half.safetensors"
    assert main(["weights", "cast", str(source), str(out)]) == 0
    assert "float16" in capsys.readouterr().out
    ck = load_checkpoint(out, "refine")
    assert ck.config == {"width": 8}
    assert ck.metadata == {"step": "5", "stored_dtype": "float16"}
    assert ck.state_dict["0.weight"].dtype == torch.float16
    assert ck.state_dict["1.num_batches_tracked"].dtype == torch.int64  # counters kept
    other = _net()
    load_state_dict(other, ck.state_dict)
    assert other[0].weight.dtype == torch.float32  # the module keeps float32
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(other.state_dict()[key], value, rtol=1e-3, atol=1e-4), key
    assert out.stat().st_size < 0.6 * source.stat().st_size + 2000
    # refusals: same file, unknown dtype, a value beyond float16's range
    assert main(["weights", "cast", str(source), str(source)]) == 2
    with pytest.raises(SystemExit):  # argparse names the choices
        main(["weights", "cast", str(source), str(out), "--dtype", "int8"])
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = 1e6
    save_checkpoint(source, "refine", {}, net.state_dict())
    from vfxmatte.errors import ConfigError
    from vfxmatte.weights import cast_checkpoint

    with pytest.raises(WeightsError, match="0.weight does not fit in float16"):
        cast_checkpoint(source, tmp_path / "x.safetensors")
    with pytest.raises(ConfigError, match="unknown dtype"):
        cast_checkpoint(source, tmp_path / "x.safetensors", "int8")
