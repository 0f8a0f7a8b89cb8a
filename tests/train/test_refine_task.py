"""Training the sparse refiner (task=refine): stacking, selection, the coarse pass, fitting, export."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vfxmatte.errors import ConfigError
from vfxmatte.matte.network.arch import PRNMattingNet
from vfxmatte.refine.sparse_conv import ActiveSet
from vfxmatte.train.config import load_train_config
from vfxmatte.train.evaluation import predict_alpha
from vfxmatte.train.refine_task import (
    RefineTask,
    coarse_pass,
    select_active,
    stack_tall,
    unstack_tall,
)
from vfxmatte.train.tasks import TINY_ARCH, build_task
from vfxmatte.train.trainer import Trainer
from vfxmatte.weights import save_checkpoint


@pytest.fixture
def coarse_weights(tmp_path):
    torch.manual_seed(0)
    # no band gate: these tests need selected pixels everywhere, not only near a mask's edge
    model = PRNMattingNet(dataclasses.replace(TINY_ARCH, band_max=0.0)).eval()
    path = tmp_path / "coarse.safetensors"
    save_checkpoint(path, "matte", {"arch": dataclasses.asdict(model.arch)}, model.state_dict())
    return path


def _config(tmp_path, coarse, *extra: str):
    return load_train_config(
        None,
        [
            "task=refine",
            f"refine.coarse_weights={coarse}",
            "refine.width=8",
            "refine.blocks=1",
            "threads=1",
            "data.crop_size=64",
            "data.batch_size=2",
            "data.synth_canvas=96",
            "eval_samples=2",
            "eval_size=64",
            "eval_every=0",
            "previews=1",
            "log_every=2",
            "checkpoint_every=1000",
            "optim.warmup_steps=1",
            f"out_dir={tmp_path / 'run'}",
            *extra,
        ],
    )


def test_stack_tall_round_trips_and_keeps_samples_apart() -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    tall = stack_tall(x)
    assert tall.shape == (3, 2 * 5, 5)
    assert torch.equal(tall[:, 4], torch.zeros(3, 5))  # the separator row after sample 0
    assert torch.equal(tall[:, 5:9], x[1])
    assert torch.equal(unstack_tall(tall, 2), x)
    # Every pixel of both samples active: no 3x3 neighbourhood reaches across the gap.
    mask = stack_tall(torch.ones(2, 1, 4, 5))[0] > 0
    active = ActiveSet.from_mask(mask)
    table = active.neighbours()
    rows = active.coords[:, 0]
    for i in range(len(active)):
        neighbours = table[i][table[i] < len(active)]
        assert torch.all(rows[neighbours] // 5 == rows[i] // 5)


def test_select_active_thresholds_and_grows() -> None:
    error = torch.zeros(1, 1, 7, 7)
    error[0, 0, 3, 3] = 0.2
    error[0, 0, 0, 0] = 0.05
    assert select_active(error, 0.1, 0)[0, 0].nonzero().tolist() == [[3, 3]]
    grown = select_active(error, 0.1, 1)[0, 0]
    assert int(grown.sum()) == 9 and bool(grown[2:5, 2:5].all())
    assert int(select_active(error, 0.01, 0).sum()) == 2
    assert not select_active(error, 0.2, 0).any()  # strictly above tau


def test_coarse_pass_at_full_scale_is_the_plain_forward(coarse_weights) -> None:
    from vfxmatte.matte.network.backend import load_matting_network

    model, _ = load_matting_network(coarse_weights)
    rng = np.random.default_rng(1)
    image = rng.random((40, 56, 3)).astype(np.float32)
    guidance = np.zeros((40, 56), np.float32)
    guidance[8:30, 10:40] = 1.0
    img = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    gui = torch.from_numpy(guidance)[None, None]
    with torch.no_grad():
        alpha, error, features = coarse_pass(model, img, gui, 1.0)
        half, half_error, half_features = coarse_pass(model, img, gui, 0.5)
    np.testing.assert_allclose(
        alpha[0, 0].numpy(), predict_alpha(model, image, guidance), atol=1e-6
    )
    assert half.shape == (1, 1, 20, 28) and half_error.shape == (1, 1, 20, 28)
    assert features.shape == (1, TINY_ARCH.skip_planes[0], 40, 56)
    assert half_features.shape[-2:] == (20, 28)
    assert 0.0 <= float(error.min()) and float(error.max()) <= 1.0


def test_refiner_fits_a_fixed_batch_on_the_selected_pixels(tmp_path, coarse_weights) -> None:
    config = _config(
        tmp_path, coarse_weights, "refine.tau_min=0.0", "refine.tau_max=0.0",
        "refine.coarse_scale_min=0.5", "refine.coarse_scale_max=0.5",
        "loss.composition=0", "loss.laplacian=0",
    )  # fmt: skip
    task = build_task(config)
    assert isinstance(task, RefineTask)
    torch.manual_seed(0)
    batch = task.batch(0)
    optimiser = torch.optim.Adam(task.model.parameters(), lr=3e-3)
    first = task.losses(batch, 0)
    assert float(first["active"]) > 0.5  # tau 0: the random coarse net is unsure everywhere
    for _ in range(60):
        terms = task.losses(batch, 0)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
    last = task.losses(batch, 0)
    assert float(last["coarse_mae"]) == pytest.approx(float(first["coarse_mae"]))
    assert float(last["mae"]) < 0.7 * float(first["mae"])
    # The frozen coarse network got no gradient.
    assert all(p.grad is None for p in task.coarse.parameters())


def test_refine_run_exports_weights_the_engine_refiner_loads(tmp_path, coarse_weights) -> None:
    from vfxmatte.refine.options import SparseRefineConfig
    from vfxmatte.refine.sparse import SparseRefiner

    trainer = Trainer(_config(tmp_path, coarse_weights, "steps=4"))
    path = trainer.fit()
    out = tmp_path / "run"
    assert path == out / "model.safetensors"
    header = open(out / "log.csv").readline().strip().split(",")
    assert {"l1", "laplacian", "composition", "mae", "coarse_mae", "active"} <= set(header)
    assert (out / "eval.jsonl").read_text().count("eval_SAD") == 1
    refiner = SparseRefiner(SparseRefineConfig(weights=str(path), tau=0.0, device="cpu"))
    assert refiner.net.arch.width == 8 and refiner.net.arch.blocks == 1
    rng = np.random.default_rng(2)
    image = rng.random((30, 44, 3)).astype(np.float32)
    alpha = rng.random((15, 22)).astype(np.float32)
    assert refiner.feature_channels == TINY_ARCH.skip_planes[0]
    features = torch.rand(1, refiner.feature_channels, 15, 22)
    refined = refiner(image, alpha, np.full((15, 22), 0.5, np.float32), features=features)
    assert refined.shape == (30, 44) and np.isfinite(refined).all()
    plain = build_task(_config(tmp_path, coarse_weights, "refine.features=false"))
    assert plain.model.arch.feature_channels == 0


def test_refine_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="refine"):
        load_train_config(None, ["task=refine", "refine.tau_min=0.5", "refine.tau_max=0.1"])
    with pytest.raises(ConfigError, match="coarse_scale"):
        load_train_config(None, ["refine.coarse_scle_min=0.5"])
    config = load_train_config(None, ["task=refine", f"refine.coarse_weights={tmp_path}/no.st"])
    with pytest.raises(Exception, match="no.st"):
        build_task(config)


def test_training_forward_equals_the_engine_refiner(tmp_path, coarse_weights) -> None:
    """Selection, inputs (features included) and sparse forward match SparseRefiner's."""
    from vfxmatte.refine.options import SparseRefineConfig
    from vfxmatte.refine.sparse import SparseRefiner
    from vfxmatte.train.refine_task import upsample

    config = _config(
        tmp_path, coarse_weights, "refine.tau_min=0.3", "refine.tau_max=0.3",
        "refine.dilate_max=0", "refine.coarse_scale_min=0.5", "refine.coarse_scale_max=0.5",
        "data.batch_size=2",
    )  # fmt: skip
    task = build_task(config)
    assert task.model.arch.feature_channels == TINY_ARCH.skip_planes[0]
    with torch.no_grad():
        for layer in task.model.layers:  # a refiner that visibly changes alpha
            layer.weight.mul_(5.0)
    batch = task.batch(0)
    refiner = SparseRefiner(SparseRefineConfig(tau=0.3, device="cpu"), network=task.model)
    with torch.no_grad():
        alpha, error, features = coarse_pass(task.coarse, batch["image"], batch["guidance"], 0.5)
        h, w = batch["image"].shape[-2:]
        select = select_active(upsample(error, h, w), 0.3, 0)
        full = upsample(alpha, h, w)
        for i in range(2):
            image = batch["image"][i].permute(1, 2, 0).numpy()
            conf = 1.0 - error[i, 0].numpy()
            out = refiner(image, alpha[i, 0].numpy(), conf, features=features[i : i + 1])
            assert refiner.last_stats.selected == int(select[i].sum()) > 0
            changed = np.abs(out - full[i, 0].numpy()) > 1e-6
            assert changed.any() and not changed[~select[i, 0].numpy()].any()
            # the training path's refined rows for sample i
            task.model.eval()
            terms_alpha = _training_alpha(task, batch, i)
            np.testing.assert_allclose(out, terms_alpha, atol=2e-5)


def _training_alpha(task, batch, index):
    """Full alpha of sample ``index`` as RefineTask.losses refines it (rows written back)."""
    from vfxmatte.refine.sparse_net import sparse_inputs
    from vfxmatte.train.refine_task import upsample

    image = batch["image"][index : index + 1]
    h, w = image.shape[-2:]
    alpha, error, features = coarse_pass(task.coarse, image, batch["guidance"][index : index + 1],
                                         0.5)  # fmt: skip
    alpha, error = upsample(alpha, h, w), upsample(error, h, w)
    select = select_active(error, 0.3, 0)
    active = ActiveSet.from_mask(stack_tall(select)[0])
    tall = stack_tall(alpha)[0]
    inputs = sparse_inputs(stack_tall(image).permute(1, 2, 0), tall, stack_tall(error)[0], active)
    up = stack_tall(upsample(features, h, w)).permute(1, 2, 0)
    inputs = torch.cat([inputs, active.gather(up)], dim=1)
    rows = task.model(inputs, active, impl="torch")
    tall = tall.clone()
    tall[active.coords[:, 0], active.coords[:, 1]] = rows
    return unstack_tall(tall[None], 1)[0, 0].numpy()
