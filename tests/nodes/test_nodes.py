"""The in-memory nodes against the library functions they wrap, on the synthetic shot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfxmatte.decontaminate.fusion import estimate_foreground_fusion
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.outputs import FrameResult, composite_preview
from vfxmatte.engine.stages import ColourContext, Stages
from vfxmatte.errors import InputError, MissingFramesError
from vfxmatte.io.colour import linear_to_srgb, resolve_colourspace, srgb_to_linear, to_display
from vfxmatte.io.frame import Frame
from vfxmatte.io.image import probe_image, read_image
from vfxmatte.io.mask import read_mask
from vfxmatte.panoptic.labels import read_label_map
from vfxmatte.propagate.flow import FlowPropagateConfig, propagate_sequence
from vfxmatte.refine.none import NoRefine

RGB = ("R", "G", "B")


@pytest.fixture(scope="module")
def plate(nodes, shot):
    ref, *_ = nodes["VfxMatte.OpenPlate"]().open(plate=shot.plate)
    return ref


@pytest.fixture(scope="module")
def linear(shot) -> np.ndarray:
    """The plate's scene-linear frames, ``5 x 64 x 96 x 3``."""
    return np.stack(
        [read_image(shot.frame(shot.plate, n), "RGB").pixels for n in range(1001, 1006)]
    )


@pytest.fixture(scope="module")
def guidance(shot) -> np.ndarray:
    """A coarse mask per frame: ground-truth alpha > 0.5 grown by 3 px."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    out = []
    for n in range(1001, 1006):
        alpha = read_image(shot.frame(shot.alpha, n)).pixels[..., 0]
        out.append(cv2.dilate((alpha > 0.5).astype(np.float32), kernel))
    return np.stack(out)


def _colour(name: str) -> ColourContext:
    return ColourContext.resolve(name, Frame(0, np.zeros((1, 1, 3), np.float32), RGB))


def test_read_frames_converts_and_guards_memory(nodes, plate, linear) -> None:
    image, alpha = nodes["VfxMatte.ReadFrames"]().read(plate)
    np.testing.assert_array_equal(image.numpy(), to_display(linear, "lin_rec709"))
    assert float(image.max()) <= 1.0 and float(alpha.min()) == 1.0  # no A channel: opaque
    kept, _ = nodes["VfxMatte.ReadFrames"]().read(plate, frames="1002,1004", colourspace="ACEScg")
    assert tuple(kept.shape) == (2, 64, 96, 3) and float(kept.max()) > 1.0  # linear: unclipped
    with pytest.raises(
        InputError, match=r"Reading 5 frames of 96x64 .*max_frames is 4.*Matte Shot"
    ):
        nodes["VfxMatte.ReadFrames"]().read(plate, max_frames=4)
    with pytest.raises(MissingFramesError, match="Frames 1006-1009 are not in the plate"):
        nodes["VfxMatte.ReadFrames"]().read(plate, frames="1004-1009")


def test_open_plate_reports_missing_frames(nodes, shot) -> None:
    text = nodes["VfxMatte.OpenPlate"].check(plate=shot.plate, frames="1001-1010")
    assert "5 frame(s)" in text and "1006-1010" in text


@pytest.mark.parametrize("space", ["sRGB", "lin_rec709"])
def test_matte_node_is_the_engine_stages(nodes, linear, guidance, space: str) -> None:
    colour = _colour(space)
    frames = linear if space == "lin_rec709" else to_display(linear, "lin_rec709")
    alpha, fg, confidence = nodes["VfxMatte.Matte"]().matte(
        images=torch.from_numpy(frames[:3]),
        guidance=torch.from_numpy(guidance[:3]),
        image_colourspace=space,
        matte_classical_band_fraction=0.1,
    )
    config = PipelineConfig()
    config.matte.classical.band_fraction = 0.1
    stages = Stages(config, colour)
    for i in range(3):
        frame = Frame(i, frames[i], RGB)
        result = stages.process(frame, guidance[i], colour.display(frames[i]))
        np.testing.assert_array_equal(alpha[i].numpy(), result.alpha)
        np.testing.assert_array_equal(confidence[i].numpy(), result.confidence)
        if space == "lin_rec709":
            np.testing.assert_array_equal(fg[i].numpy(), result.fg)
        else:
            expected = np.clip(linear_to_srgb(result.fg), 0, 1)
            np.testing.assert_allclose(fg[i].numpy(), expected, atol=1e-6)
    assert 0.05 < float(alpha.mean()) < 0.6
    if space == "lin_rec709":
        assert float(fg.max()) > 1.0  # highlights above 1 survive the linear path


def test_matte_node_broadcasts_one_guidance(nodes, linear, guidance) -> None:
    image = torch.from_numpy(to_display(linear[:2], "lin_rec709"))
    one = nodes["VfxMatte.Matte"]().matte(images=image, guidance=torch.from_numpy(guidance[:1]))[0]
    assert tuple(one.shape) == (2, 64, 96)
    with pytest.raises(InputError, match="has 2 mask"):
        nodes["VfxMatte.Matte"]().matte(images=image[:1], guidance=torch.from_numpy(guidance[:2]))


def test_propagate_node_offers_the_snapcut_backend(nodes, shot, linear) -> None:
    """propagate_backend=snapcut gives, per object, the library's snapcut sequence."""
    from vfxmatte.propagate.snapcut import SnapCutPropagateConfig
    from vfxmatte.propagate.snapcut import propagate_sequence as snapcut_sequence

    node = nodes["VfxMatte.PropagateMask"]
    types_ = {**node.INPUT_TYPES()["required"], **node.INPUT_TYPES().get("optional", {})}
    choices = types_["propagate_backend"][0]
    assert "snapcut" in choices and "flow" in choices
    display = to_display(linear, "lin_rec709")
    labels = [read_label_map(shot.frame(shot.labels, n)) for n in range(1001, 1006)]
    key = np.stack([(labels[0] == k).astype(np.float32) for k in (1, 2)])
    masks, _ = node().propagate(
        images=torch.from_numpy(display),
        masks=torch.from_numpy(key),
        propagate_backend="snapcut",
    )
    config = SnapCutPropagateConfig()
    for obj in range(2):
        expected = dict(snapcut_sequence(lambda i: display[i], range(5), {0: key[obj]}, config))
        np.testing.assert_array_equal(masks[obj].numpy(), np.stack([expected[i] for i in range(5)]))
        np.testing.assert_array_equal(masks[obj][0].numpy() > 0.5, key[obj] > 0.5)


def test_propagate_node_is_the_flow_backend(nodes, shot, linear) -> None:
    display = to_display(linear, "lin_rec709")
    labels = [read_label_map(shot.frame(shot.labels, n)) for n in range(1001, 1006)]
    key = np.stack([(labels[2] == k).astype(np.float32) for k in (1, 2)])
    later = np.stack([(labels[4] == k).astype(np.float32) for k in (1, 2)])
    masks, union = nodes["VfxMatte.PropagateMask"]().propagate(
        images=torch.from_numpy(display),
        masks=torch.from_numpy(key),
        key_index=2,
        keyframe_masks=torch.from_numpy(later),
        keyframe_indices="4",
        propagate_backend="flow",
        propagate_flow_work_long_side=128,
    )
    assert len(masks) == 2
    config = FlowPropagateConfig(work_long_side=128)
    for obj in range(2):
        keys = {2: key[obj], 4: later[obj]}
        expected = dict(propagate_sequence(lambda i: display[i], range(5), keys, config))
        np.testing.assert_array_equal(masks[obj].numpy(), np.stack([expected[i] for i in range(5)]))
        assert masks[obj][0].sum() > 20  # carried backward to the first frame
    assert not np.array_equal(masks[0].numpy(), masks[1].numpy())
    np.testing.assert_array_equal(union.numpy(), np.maximum(masks[0].numpy(), masks[1].numpy()))
    with pytest.raises(InputError, match="keyframe_masks holds 1 mask.*for 2 object"):
        nodes["VfxMatte.PropagateMask"]().propagate(
            images=torch.from_numpy(display), masks=torch.from_numpy(key),
            keyframe_masks=torch.from_numpy(later[:1]), keyframe_indices="4",
        )  # fmt: skip


def test_decontaminate_node_is_the_default_fusion_backend(nodes, linear, shot) -> None:
    alpha = np.stack([read_image(shot.frame(shot.alpha, n)).pixels[..., 0] for n in (1001, 1002)])
    (fg,) = nodes["VfxMatte.Decontaminate"]().decontaminate(
        images=torch.from_numpy(linear[:2]), alpha=torch.from_numpy(alpha),
        image_colourspace="lin_rec709",
    )  # fmt: skip
    for i in range(2):
        expected = estimate_foreground_fusion(linear[i], alpha[i])
        np.testing.assert_array_equal(fg[i].numpy(), expected)


def test_refine_node_none_upsamples_a_working_resolution_alpha(nodes, linear, guidance) -> None:
    import cv2

    image = to_display(linear[:1], "lin_rec709")
    small = cv2.resize(guidance[0], (48, 32), interpolation=cv2.INTER_AREA)
    (alpha,) = nodes["VfxMatte.Refine"]().refine(
        images=torch.from_numpy(image), alpha=torch.from_numpy(small)[None],
        confidence=torch.ones(1, 32, 48),
    )  # fmt: skip
    expected = NoRefine()(image[0], small, np.ones_like(small))
    assert tuple(alpha.shape) == (1, 64, 96)
    np.testing.assert_array_equal(alpha[0].numpy(), expected)


def test_premultiply_and_composite_in_linear_light(nodes) -> None:
    rng = np.random.default_rng(4)
    fg = rng.random((2, 8, 10, 3), dtype=np.float32)
    bg = rng.random((2, 8, 10, 3), dtype=np.float32)
    alpha = rng.random((2, 8, 10), dtype=np.float32)
    premultiplied, rgba = nodes["VfxMatte.Premultiply"]().premultiply(
        torch.from_numpy(fg), torch.from_numpy(alpha)
    )
    expected = linear_to_srgb(srgb_to_linear(fg) * alpha[..., None])
    np.testing.assert_allclose(premultiplied.numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(rgba.numpy(), np.concatenate([fg, alpha[..., None]], axis=3))
    (over,) = nodes["VfxMatte.Composite"]().composite(
        torch.from_numpy(fg), torch.from_numpy(alpha), background=torch.from_numpy(bg),
        mode="image", image_colourspace="lin_rec709",
    )  # fmt: skip
    a = alpha[..., None]
    np.testing.assert_allclose(over.numpy(), fg * a + bg * (1 - a), atol=1e-6)
    (checker,) = nodes["VfxMatte.Composite"]().composite(
        torch.from_numpy(fg), torch.from_numpy(alpha), mode="checker", image_colourspace="sRGB"
    )
    result = FrameResult(0, alpha[0], srgb_to_linear(fg[0]), alpha[0], {})
    preview = composite_preview(result, "checker").astype(np.float32) / 255.0
    np.testing.assert_allclose(checker[0].numpy(), preview, atol=1e-5)
    with pytest.raises(InputError, match="needs a background IMAGE"):
        nodes["VfxMatte.Composite"]().composite(
            torch.from_numpy(fg), torch.from_numpy(alpha), mode="image"
        )


def test_write_exr_sequence_is_linear_premultiplied(nodes, comfy) -> None:
    rng = np.random.default_rng(5)
    image = rng.random((2, 6, 8, 3), dtype=np.float32)
    alpha = rng.random((2, 6, 8), dtype=np.float32)
    out = nodes["VfxMatte.WriteEXRSequence"]().write(
        torch.from_numpy(image), "w/frames.####.exr", alpha=torch.from_numpy(alpha),
        first_frame=11, dtype="float",
    )  # fmt: skip
    (ref,) = out["result"]
    assert ref.frames == (11, 12) and ref.source == str(comfy.output_dir / "w/frames.####.exr")
    for i, number in enumerate((11, 12)):
        path = comfy.output_dir / "w" / f"frames.{number:04d}.exr"
        pixels = read_image(path, "RGBA").pixels
        np.testing.assert_allclose(
            pixels[..., :3], srgb_to_linear(image[i]) * alpha[i][..., None], atol=1e-6
        )
        np.testing.assert_array_equal(pixels[..., 3], alpha[i])
        tag = probe_image(path).metadata["oiio:ColorSpace"]
        assert resolve_colourspace(tag) == resolve_colourspace("lin_rec709")
    back, back_alpha = nodes["VfxMatte.ReadFrames"]().read(ref, colourspace="lin_rec709")
    np.testing.assert_array_equal(back_alpha.numpy(), alpha)


def test_matte_shot_keyframe_masks_and_load_image_placeholder(nodes, comfy, comfy_shot) -> None:
    plate, *_ = nodes["VfxMatte.OpenPlate"]().open(plate="shot/plate/plate.####.exr")
    mask = torch.from_numpy(read_mask(comfy_shot.mask))[None]
    empty = torch.zeros(1, 64, 64)  # what Load Image gives for a PNG without alpha
    with pytest.raises(InputError, match="empty 64x64 MASK that ComfyUI's Load Image gives"):
        nodes["VfxMatte.MatteShot"]().run(plate=plate, output="k/m.####.exr", key_mask=empty)
    later = torch.from_numpy(read_mask(comfy_shot.mask))[None]
    out = nodes["VfxMatte.MatteShot"]().run(
        plate=plate, output="k/m.####.exr", key_mask=mask, keyframe_masks=later,
        keyframe_mask_frames="1004", output_options_kinds="alpha",
    )  # fmt: skip
    assert not (comfy.output_dir / "k" / "keyframes").exists()  # saved for the run only
    assert out["result"][0].channels == "A" and out["result"][0].frames == tuple(range(1001, 1006))
    assert out["result"][1].startswith("5 frame(s) written")
    with pytest.raises(InputError, match="needs the key frame's mask: connect a MASK to key_mask"):
        nodes["VfxMatte.MatteShot"]().run(plate=plate, output="k2/m.####.exr")


def test_panoptic_matte_checks_the_label_map_size(nodes, shot, plate) -> None:
    image, _ = nodes["VfxMatte.ReadFrames"]().read(plate, frames="1001")
    (labels,) = nodes["VfxMatte.ReadLabelMap"]().read(path=shot.frame(shot.labels, 1001))
    with pytest.raises(InputError, match=r"is 96x64 but the image is 48x32"):
        nodes["VfxMatte.PanopticMatte"]().matte(image=image[:, :32, :48], labels=labels)
