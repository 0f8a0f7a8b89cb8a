from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from vfxmatte.cli.params import add_config_arguments, config_from_args
from vfxmatte.config import load_config, param, param_specs, validate_value
from vfxmatte.errors import ConfigError


@dataclass
class Inner:
    radius: int = param(3, "Dilation radius.", min=0, max=64)
    method: str = param("dis", "Flow method.", choices=("dis", "farneback"))


@dataclass
class Outer:
    strength: float = param(0.5, "Strength.", min=0.0, max=1.0)
    enabled: bool = param(True, "Whether to run.")
    inner: Inner = field(default_factory=Inner)


def test_specs_carry_help_range_choices() -> None:
    specs = {s.name: s for s in param_specs(Inner)}
    assert specs["radius"].type is int and specs["radius"].max == 64
    assert specs["method"].choices == ("dis", "farneback")
    assert specs["radius"].help == "Dilation radius."


def test_validate_value() -> None:
    spec = param_specs(Inner)[0]
    assert validate_value(spec, "5") == 5
    with pytest.raises(ConfigError, match=r"Option 'radius' got 99; it must lie in \[0, 64\]"):
        validate_value(spec, 99)
    with pytest.raises(ConfigError, match="Option 'radius' expects a int, got 'x'"):
        validate_value(spec, "x")
    with pytest.raises(ConfigError, match="valid choices: dis, farneback. Did you mean 'dis'"):
        validate_value(param_specs(Inner)[1], "diss")


def test_yaml_and_set_overrides(tmp_path) -> None:
    path = tmp_path / "shot.yaml"
    path.write_text("strength: 0.25\ninner:\n  radius: 7\n")
    cfg = load_config(Outer, str(path), ["inner.method=farneback", "enabled=false"])
    assert cfg == Outer(0.25, False, Inner(7, "farneback"))


def test_unknown_keys_name_the_closest(tmp_path) -> None:
    with pytest.raises(ConfigError, match="Unknown option 'inner.raduis'.*Did you mean 'radius'"):
        load_config(Outer, None, ["inner.raduis=3"])
    path = tmp_path / "bad.yaml"
    path.write_text("strenght: 1\n")
    with pytest.raises(ConfigError, match="Unknown option 'strenght'.*Did you mean 'strength'"):
        load_config(Outer, str(path))
    path.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(Outer, str(path))
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE"):
        load_config(Outer, None, ["strength"])


def test_cli_flags_generated_from_fields() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Outer)
    args = parser.parse_args(["--strength", "0.75", "--no-enabled", "--inner.radius", "9"])
    assert config_from_args(Outer, args) == Outer(0.75, False, Inner(9, "dis"))
    base = Outer(0.1, True, Inner(1, "farneback"))
    assert config_from_args(Outer, parser.parse_args([]), base=base) == base
    with pytest.raises(ConfigError, match="must lie in"):
        config_from_args(Outer, parser.parse_args(["--strength", "2"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--inner.method", "bogus"])
