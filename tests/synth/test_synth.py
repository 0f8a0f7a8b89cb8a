"""Tests of the synthetic shot generator: exact ground truth, determinism, files."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.synth import render, shot
from vfxmatte.synth.shot import (
    ShotSpec,
    layer_names,
    make_shot,
    preview_png,
    render_frame,
    smpte_timecode,
    write_shot,
)

log = logging.getLogger(__name__)

SMALL = {"width": 320, "height": 180, "frames": 12}


def _spec(**kw: object) -> ShotSpec:
    return ShotSpec(**{**SMALL, **kw})  # type: ignore[arg-type]


def _clear_caches() -> None:
    render.build_objects.cache_clear()
    render.background_texture.cache_clear()


def _fractional(alpha: np.ndarray, lo: float = 0.02, hi: float = 0.98) -> int:
    return int(((alpha > lo) & (alpha < hi)).sum())


def test_same_seed_same_frame_other_seed_differs() -> None:
    spec = _spec(objects=2)
    first = render_frame(spec, 3)
    _clear_caches()
    again = render_frame(spec, 3)
    for field in ("image", "alpha", "fg", "background", "layers", "labels", "mask"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field), err_msg=field)
    other = render_frame(_spec(objects=2, seed=1), 3)
    assert not np.array_equal(first.image, other.image)
    assert not np.array_equal(first.alpha, other.alpha)


def test_frame_fields_shapes_and_types() -> None:
    spec = _spec(objects=3, first_frame=1001)
    frame = render_frame(spec, 2)
    h, w = spec.height, spec.width
    assert frame.number == 1003
    assert frame.image.shape == frame.fg.shape == frame.background.shape == (h, w, 3)
    assert frame.alpha.shape == frame.labels.shape == frame.mask.shape == (h, w)
    assert frame.layers.shape == (h, w, 4)
    assert frame.image.dtype == frame.alpha.dtype == frame.layers.dtype == np.float32
    assert frame.labels.dtype == np.int32 and frame.mask.dtype == bool
    assert layer_names(spec) == ("background", "object1", "object2", "object3")


@pytest.mark.parametrize("index", [0, 5, 11])
def test_composite_identity_holds(index: int) -> None:
    frame = render_frame(_spec(objects=3), index)
    a = frame.alpha[:, :, None].astype(np.float64)
    recomposed = a * frame.fg + (1.0 - a) * frame.background
    assert np.abs(recomposed - frame.image).max() < 1e-5
    # The same in float32 arithmetic, as a user would check it.
    a32 = frame.alpha[:, :, None]
    assert np.abs(a32 * frame.fg + (1 - a32) * frame.background - frame.image).max() < 1e-5
    assert np.all(frame.fg[frame.alpha == 0] == 0)
    assert np.isfinite(frame.fg).all()


def test_layers_partition_of_unity_and_labels() -> None:
    frame = render_frame(_spec(objects=4, seed=2), 6)
    layers = frame.layers
    assert layers.min() >= 0.0 and layers.max() <= 1.0
    assert np.abs(layers.sum(axis=-1) - 1.0).max() < 1e-6
    assert np.abs((1.0 - layers[:, :, 0]) - frame.alpha).max() < 1e-6
    np.testing.assert_array_equal(frame.labels, np.argmax(layers, axis=-1))
    assert set(np.unique(frame.labels)) <= set(range(5))
    assert frame.alpha.min() >= 0.0 and frame.alpha.max() <= 1.0


def test_objects_overlap_at_some_frame() -> None:
    spec = _spec(objects=2, frames=24)
    both = [
        int(((f.layers[:, :, 1] > 0.01) & (f.layers[:, :, 2] > 0.01)).sum())
        for f in make_shot(spec)
    ]
    assert max(both) > 20, both


def test_fractional_alpha_at_edges() -> None:
    frame = render_frame(_spec(hair=False, translucent=False, motion_blur_samples=1), 0)
    assert _fractional(frame.alpha, 0.05, 0.95) > 100
    assert (frame.alpha == 1.0).sum() > 1000  # an opaque interior, exactly 1


def test_hair_strands_are_thin_and_fractional() -> None:
    with_hair = render_frame(_spec(hair=True), 4).alpha
    without = render_frame(_spec(hair=False), 4).alpha
    strands = (without == 0) & (with_hair > 0)
    assert strands.sum() > 150
    # Sub-pixel strands: most hair pixels are well below opaque.
    assert np.median(with_hair[strands]) < 0.5
    thin = (with_hair > 0) & (with_hair < 0.5)
    assert thin.sum() - ((without > 0) & (without < 0.5)).sum() > 150


def test_translucent_veil_alpha_between_03_and_06() -> None:
    veiled = render_frame(_spec(translucent=True, hair=False), 4).alpha
    plain = render_frame(_spec(translucent=False, hair=False), 4).alpha
    veil = (plain == 0) & (veiled > 0)
    assert veil.sum() > 200
    values = veiled[veil]
    # Away from its anti-aliased, motion-blurred rim the veil is 0.3 (left) to 0.6 (right).
    assert values.max() <= 0.6 + 1e-6
    inside = values[(values >= 0.3) & (values <= 0.6)]
    assert inside.size > 0.6 * values.size
    assert inside.min() < 0.4 and inside.max() > 0.5


def test_motion_blur_widens_moving_edges() -> None:
    kw = {"hair": False, "translucent": False, "speed": 8.0, "shutter": 1.0, "pan": 0.0}
    sharp = render_frame(_spec(motion_blur_samples=1, **kw), 2).alpha
    blurred = render_frame(_spec(motion_blur_samples=5, **kw), 2).alpha
    assert _fractional(blurred) > 1.5 * _fractional(sharp)
    # Averaging sub-frames keeps the coverage: the blur moves alpha, not adds it.
    assert abs(blurred.sum() - sharp.sum()) < 0.02 * sharp.sum()


def test_highlights_above_one_and_background_range() -> None:
    frame = render_frame(_spec(objects=2), 0)
    assert frame.image.max() > 1.0
    assert frame.background.max() > 1.0
    assert frame.background.min() >= 0.02 - 1e-6 and frame.background.max() <= 1.5 + 1e-6


def test_camera_pan_moves_background() -> None:
    spec = _spec(pan=2.0)
    b0, b1 = render_frame(spec, 0).background, render_frame(spec, 1).background
    np.testing.assert_array_equal(b0[:, 2:], b1[:, :-2])
    locked = _spec(pan=0.0)
    np.testing.assert_array_equal(
        render_frame(locked, 0).background, render_frame(locked, 1).background
    )


def test_long_pan_turns_back_within_the_backdrop() -> None:
    spec = _spec(frames=1000, pan=2.0)
    room = spec.width // 2
    turn = room // 2  # the frame index at which the pan reaches the end of the backdrop
    before = render_frame(spec, turn - 1).background
    after = render_frame(spec, turn + 1).background
    np.testing.assert_array_equal(before, after)
    assert render.background_texture(spec.width + room + 1, spec.height, spec.seed).shape[1] < 500


def test_mask_is_dilation_of_opaque_core() -> None:
    spec = _spec(mask_dilate=5)
    frame = render_frame(spec, 0)
    core = frame.alpha > 0.5
    assert core.any()
    assert np.all(frame.mask[core])
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))
    np.testing.assert_array_equal(frame.mask, cv2.dilate(core.astype(np.uint8), disc) > 0)
    dist = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5)
    assert dist[frame.mask].max() <= 5.5
    assert frame.mask.sum() > core.sum()
    np.testing.assert_array_equal(render_frame(_spec(mask_dilate=0), 0).mask, core)


def test_make_shot_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = shot.render_frame

    def counting(spec: ShotSpec, index: int) -> shot.SynthFrame:
        calls.append(index)
        return real(spec, index)

    monkeypatch.setattr(shot, "render_frame", counting)
    frames = make_shot(_spec(frames=100000))
    assert inspect.isgenerator(frames)
    assert calls == []
    first = next(frames)
    assert calls == [0] and first.number == 1001


def test_write_shot_files_and_channels(tmp_path: Path) -> None:
    from vfxmatte.io.image import read_image

    spec = _spec(frames=2, objects=2)
    paths = write_shot(tmp_path / "shot", spec)
    expect = {"plate": ("R", "G", "B"), "alpha": ("A",), "fg": ("R", "G", "B")}
    expect |= {"background": ("R", "G", "B")}
    expect |= {"layers": ("background.A", "object1.A", "object2.A")}
    frames = list(make_shot(spec))
    for frame in frames:
        for name, channels in expect.items():
            read = read_image(paths.frame(getattr(paths, name), frame.number))
            assert read.channels == channels, name
            assert read.pixels.shape == (spec.height, spec.width, len(channels))
        alpha = read_image(paths.frame(paths.alpha, frame.number)).pixels[:, :, 0]
        np.testing.assert_allclose(alpha, frame.alpha, atol=1e-3)
        labels = cv2.imread(paths.frame(paths.labels, frame.number), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint16
        np.testing.assert_array_equal(labels, frame.labels)
    plate = read_image(paths.frame(paths.plate, 1001))
    assert plate.metadata["framesPerSecond"] == (24, 1)
    assert tuple(plate.metadata["smpte:TimeCode"]) == smpte_timecode(1001)
    mask = cv2.imread(paths.mask, cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask > 0, frames[0].mask)
    manifest = json.loads(Path(paths.manifest).read_text())
    assert manifest["spec"] == dataclasses.asdict(spec)
    assert (manifest["first_frame"], manifest["last_frame"]) == (1001, 1002)
    assert manifest["paths"]["plate"] == "plate/plate.####.exr"
    assert not list(Path(paths.root).rglob(".*tmp*"))


def test_write_shot_rejects_bad_dtype(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="half"):
        write_shot(tmp_path, _spec(frames=1), dtype="uint8")


def test_smpte_timecode_packs_bcd() -> None:
    # 1001 frames at 24 fps = 00:00:41:17
    assert smpte_timecode(1001) == (0x00004117, 0)
    assert smpte_timecode(24 * 3600 + 1) == (0x01000001, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("objects", 0), ("objects", 7), ("width", 0), ("supersample", 0), ("shutter", 1.5)],
)
def test_spec_rejects_out_of_range(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"ShotSpec.{field}"):
        ShotSpec(**{field: value})  # type: ignore[arg-type]


def test_spec_message_says_what_is_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        ShotSpec(objects=0)
    assert "objects" in str(info.value) and "0" in str(info.value) and "[1, 6]" in str(info.value)
    with pytest.raises(ConfigError, match="expects a int"):
        ShotSpec(width="wide")  # type: ignore[arg-type]


def test_render_frame_rejects_index_outside_shot() -> None:
    with pytest.raises(InputError, match="0-based"):
        render_frame(_spec(frames=3), 1001)


def test_variants_render() -> None:
    for kw in ({"supersample": 1}, {"objects": 6}, {"speed": 0.0, "pan": -1.5}):
        frame = render_frame(_spec(**kw), 1)  # type: ignore[arg-type]
        assert frame.alpha.max() > 0.5, kw
        assert np.abs(frame.layers.sum(axis=-1) - 1.0).max() < 1e-6


def test_preview_png() -> None:
    frame = render_frame(_spec(), 0)
    picture = preview_png(frame)
    assert picture.shape == (180, 960, 3) and picture.dtype == np.uint8
    assert picture[:, 320:640].max() == 255


def test_full_hd_frame_is_fast() -> None:
    _clear_caches()
    spec = ShotSpec(width=1920, height=1080)
    start = time.perf_counter()
    frame = render_frame(spec, 0)  # includes building the textures
    elapsed = time.perf_counter() - start
    log.info("1920x1080 frame rendered in %.2f s", elapsed)
    assert frame.image.shape == (1080, 1920, 3)
    assert elapsed < 10.0


def test_occluder_card_hides_the_objects_and_keeps_the_identity() -> None:
    spec = ShotSpec(width=160, height=90, frames=9, occluder=True, occluder_width=0.6,
                    occluder_speed=-4.0, speed=2.0, seed=3, supersample=2)  # fmt: skip
    plain = render_frame(dataclasses.replace(spec, occluder=False), 4)
    frame = render_frame(spec, 4)
    # mid-shot the card covers the frame's middle 60%: objects there are hidden
    assert frame.alpha[:, 40:120].max() == 0.0
    assert plain.alpha[:, 40:120].max() > 0.5
    recon = frame.alpha[..., None] * frame.fg + (1 - frame.alpha[..., None]) * frame.background
    np.testing.assert_allclose(recon, frame.image, atol=1e-4)
    np.testing.assert_allclose(frame.layers.sum(axis=-1), 1.0, atol=1e-5)
    assert (frame.alpha <= plain.alpha + 1e-6).all()
