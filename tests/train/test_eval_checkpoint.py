"""``vfxmatte eval --weights W --dataset DIR``: a checkpoint scored on a dataset folder."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from vfxmatte.cli import main
from vfxmatte.matte.network.arch import PRNMattingNet
from vfxmatte.refine.sparse_net import SparseRefineArch, SparseRefineNet
from vfxmatte.train.tasks import TINY_ARCH
from vfxmatte.weights import save_checkpoint


def _png(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "set"
    rng = np.random.default_rng(3)
    for i in range(3):
        alpha = np.zeros((48, 64), np.uint8)
        cv2.circle(alpha, (32, 24), 12 + 2 * i, 255, -1, cv2.LINE_AA)
        plate = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        plate[alpha > 128] = (40, 200, 90)
        _png(root / "merged" / f"s{i}.png", plate)
        _png(root / "alpha" / f"s{i}.png", alpha)
    return root


@pytest.fixture(params=[False, True], ids=["plain-refiner", "feature-refiner"])
def checkpoints(tmp_path, request):
    """A tiny matting network and a refiner, with or without its decoder features."""
    torch.manual_seed(0)
    matte = PRNMattingNet(dataclasses.replace(TINY_ARCH)).eval()
    matte_path = tmp_path / "matte.safetensors"
    save_checkpoint(
        matte_path, "matte", {"arch": dataclasses.asdict(matte.arch)}, matte.state_dict()
    )
    features = matte.arch.skip_planes[0] if request.param else 0
    refine = SparseRefineNet(SparseRefineArch(width=8, blocks=1, feature_channels=features))
    refine_path = tmp_path / "refine.safetensors"
    save_checkpoint(refine_path, "refine", dataclasses.asdict(refine.arch), refine.state_dict())
    return matte_path, refine_path


def test_eval_scores_a_checkpoint_on_a_folder(tmp_path, dataset, checkpoints, capsys) -> None:
    from vfxmatte.matte.network.backend import NetworkMatte
    from vfxmatte.matte.network.options import NetworkMatteConfig
    from vfxmatte.metrics import MetricsAccumulator
    from vfxmatte.train.evaluation import folder_frames

    matte, refine = checkpoints
    out = tmp_path / "report"
    args = ["eval", "--weights", str(matte), "--dataset", str(dataset), "--refine", str(refine)]
    args += ["--iterations", "2", "--out", str(out), "--previews", "1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "3 samples" in text and "network, T=2 decoding + sparse refinement" in text
    report = json.loads((out / "eval.json").read_text())
    rows = report["alpha"]
    assert set(rows) == {
        "guidance mask",
        "classical (default)",
        "network, T=2 decoding",
        "network, T=2 decoding + sparse refinement",
    }
    # The network row is the engine backend's result on the same frames.
    backend = NetworkMatte(NetworkMatteConfig(weights=str(matte), device="cpu", iterations=2))
    acc = MetricsAccumulator()
    for i, frame in enumerate(folder_frames(dataset)):
        acc.add(i, np.clip(backend(frame.image, frame.guidance)[0], 0, 1), frame.alpha)
    assert rows["network, T=2 decoding"]["SAD"] == pytest.approx(acc.mean()["SAD"], rel=1e-5)
    preview = cv2.imread(str(out / "heldout_0.png"))
    assert preview.shape == (48, 64 * 6, 3)  # plate, guidance, classical, net, net+sparse, GT


def test_eval_without_baselines_and_limit(dataset, checkpoints, capsys) -> None:
    matte, _ = checkpoints
    args = ["eval", "--weights", str(matte), "--dataset", str(dataset), "--no-baselines"]
    assert main([*args, "--limit", "2", "--iterations", "1"]) == 0
    text = capsys.readouterr().out
    assert "2 samples" in text and "network, 1 pass" in text and "classical" not in text


def test_eval_argument_errors(tmp_path, dataset, checkpoints, capsys) -> None:
    matte, refine = checkpoints
    assert main(["eval", "--weights", str(matte)]) == 2
    assert "--dataset go together" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert "PRED and GT" in capsys.readouterr().err
    assert main(["eval", "a", "b", "--weights", str(matte), "--dataset", str(dataset)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["eval", "--weights", str(matte), "--dataset", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err
    # a refine checkpoint where a matte one belongs: the kind is named
    assert main(["eval", "--weights", str(refine), "--dataset", str(dataset)]) == 2
    assert "refine" in capsys.readouterr().err
    args = ["eval", "--weights", str(matte), "--dataset", str(dataset), "--tau", "2"]
    assert main(args) == 2
    assert "--tau" in capsys.readouterr().err
