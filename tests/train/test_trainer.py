"""The trainer: schedule, smoke run, exact resume, export into the inference backends, config errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from vfxmatte.cli import main
from vfxmatte.errors import ConfigError, WeightsError
from vfxmatte.train.config import load_train_config
from vfxmatte.train.trainer import Trainer, lr_factor


def _config(tmp_path, *extra: str, name: str = "run"):
    overrides = [
        "arch=tiny",
        "threads=1",
        "data.crop_size=64",
        "data.batch_size=2",
        "data.synth_canvas=96",
        "eval_samples=2",
        "eval_size=64",
        "eval_every=0",
        "previews=1",
        "log_every=5",
        "checkpoint_every=1000",
        "guidance.curriculum_steps=3",
        "optim.warmup_steps=2",
        f"out_dir={tmp_path / name}",
        *extra,
    ]
    return load_train_config(None, overrides)


def test_lr_schedule_warms_up_then_decays() -> None:
    f = [lr_factor(s, 10, 100, 0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[-1] == pytest.approx(0.1, abs=1e-3)


def test_smoke_run_20_steps_logs_evaluates_and_exports(tmp_path) -> None:
    config = _config(tmp_path, "steps=20", "eval_every=10")
    trainer = Trainer(config)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    path = trainer.fit()
    out = tmp_path / "run"
    assert path == out / "model.safetensors" and path.is_file()
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert all(np.isfinite(float(r["total"])) for r in rows)
    assert {"l1", "laplacian", "composition", "confidence", "lr"} <= set(rows[0])
    assert len((out / "eval.jsonl").read_text().splitlines()) == 2  # step 10 and the end
    assert (out / "previews" / "step000020_0.png").is_file()
    assert (out / "config.yaml").is_file() and (out / "checkpoint.pt").is_file()
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_resume_is_bit_identical(tmp_path) -> None:
    straight = Trainer(_config(tmp_path, "steps=4", name="a"))
    for _ in range(4):
        straight.train_step()
    first = Trainer(_config(tmp_path, "steps=4", name="b"))
    for _ in range(2):
        first.train_step()
    first.save()
    first._log({"total": 1.0}, 1.0)
    first.train_step()  # interrupted after a logged step that the checkpoint does not hold
    first._log({"total": 1.0}, 2.0)
    del first
    resumed = Trainer(_config(tmp_path, "steps=4", name="b"))
    resumed.load()
    assert resumed.step == 2
    rows = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert [r["step"] for r in rows] == ["2"]  # the row of step 3 was dropped
    for _ in range(2):
        resumed.train_step()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)


def test_exported_matte_weights_load_in_the_backend(tmp_path) -> None:
    from vfxmatte.matte.network.backend import NetworkMatte
    from vfxmatte.matte.network.options import NetworkMatteConfig

    trainer = Trainer(_config(tmp_path, "steps=1"))
    trainer.train_step()
    path = trainer.export()
    backend = NetworkMatte(NetworkMatteConfig(weights=str(path), device="cpu", iterations=2))
    image = np.random.default_rng(0).random((40, 70, 3)).astype(np.float32)
    mask = np.zeros((40, 70), np.float32)
    mask[10:30, 20:50] = 1
    alpha, confidence = backend(image, mask)
    assert alpha.shape == (40, 70) and confidence.shape == (40, 70)
    assert backend.checkpoint.metadata["train.step"] == "1"


def test_exported_colour_weights_load_in_the_backend(tmp_path) -> None:
    from vfxmatte.decontaminate.network import load_colour_network

    trainer = Trainer(_config(tmp_path, "task=colour", "steps=2"))
    for _ in range(2):
        terms = trainer.train_step()
    assert {"l1", "band_l1", "total"} <= set(terms)
    model = load_colour_network(trainer.export())
    out = model(torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16))
    assert out.shape == (1, 3, 16, 16)


def test_cli_trains_with_overrides(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    args = ["train", "--set", "arch=tiny", "--set", "steps=2", "--set", "data.crop_size=64"]
    args += ["--set", "data.batch_size=2", "--set", "eval_samples=1", "--set", "eval_size=64"]
    args += ["--set", "threads=1", "--set", "data.synth_canvas=96"]
    args += ["--set", f"out_dir={out}", "--set", "name=tiny"]
    assert main(args) == 0
    assert (out / "tiny.safetensors").is_file()
    assert "weights:" in capsys.readouterr().out


def test_config_errors(tmp_path, capsys) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'crop_size'"):
        load_train_config(None, ["data.crop_sise=64"])
    with pytest.raises(ConfigError, match="multiple of 32"):
        load_train_config(None, ["data.crop_size=100"])
    with pytest.raises(ConfigError, match="valid choices"):
        load_train_config(None, ["task=mate"])
    with pytest.raises(ConfigError, match="batch_size"):
        load_train_config(None, ["data.batch_size=1"])
    with pytest.raises(ConfigError, match="matting_dirs"):
        load_train_config(None, ["data.source=folders"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: fast\n")
    with pytest.raises(ConfigError, match="optim.lr"):
        load_train_config(str(bad))
    with pytest.raises(WeightsError, match="no checkpoint"):
        Trainer(_config(tmp_path, "steps=1", name="none")).load()
    done = Trainer(_config(tmp_path, "steps=1", name="done"))
    done.save()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(_config(tmp_path, "steps=1", name="done")).fit()
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "Cannot read the config file" in capsys.readouterr().err


def test_resume_refuses_another_architecture(tmp_path) -> None:
    trainer = Trainer(_config(tmp_path, "steps=1"))
    trainer.save()
    other = Trainer(_config(tmp_path, "steps=1", "seed=5"))
    with pytest.raises(ConfigError, match="seed"):
        other.load()


def test_trimap_loss_trains_a_trimap_head_the_backend_loads(tmp_path) -> None:
    from vfxmatte.matte.network.backend import NetworkMatte
    from vfxmatte.matte.network.options import NetworkMatteConfig

    trainer = Trainer(_config(tmp_path, "steps=2", "loss.trimap=0.5"))
    assert trainer.model.arch.trimap_head and trainer.model.decoder.trimap is not None
    head = {k: v.clone() for k, v in trainer.model.state_dict().items() if "trimap" in k}
    terms = trainer.train_step()
    assert np.isfinite(terms["trimap"]) and terms["trimap"] > 0
    after = trainer.model.state_dict()
    assert any(not torch.equal(head[k], after[k]) for k in head)  # the head learns
    backend = NetworkMatte(NetworkMatteConfig(weights=str(trainer.export()), device="cpu"))
    assert backend.model.arch.trimap_head
    image = np.random.default_rng(0).random((40, 64, 3)).astype(np.float32)
    mask = np.zeros((40, 64), np.float32)
    mask[8:30, 16:48] = 1
    alpha, _ = backend(image, mask)
    assert alpha.shape == (40, 64)
    # Without the loss there is no head.
    assert not Trainer(_config(tmp_path, "steps=1", name="plain")).model.arch.trimap_head
