"""Inside ComfyUI the nodes read and write only in its folders (nodes/folders.py).

A workflow is a file people share and a ComfyUI server often serves several people:
``../``, ``~``, absolute paths and symbolic links that lead out of ComfyUI's input,
output and model folders are refused with a sentence naming the folder and the
setting that allows them on a trusted machine. Outside ComfyUI nothing is confined.
The last test checks the pack's rules against the real ComfyUI 0.8.0 ``folder_paths``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from vfxmatte.io.image import write_image

PASSWD = "../../../../../../../../../../etc/passwd"
COMFYUI_TARBALL = Path(__file__).resolve().parents[2] / ".." / "shared" / "hosts"


def _refused(cls, **values) -> str:
    """The check text of a node for these widget values (it must refuse)."""
    result = cls.check(**values)
    assert result is not True, f"{cls.__name__} accepted {values}"
    return result


def _mask_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.ones((8, 8), np.float32), ["Y"], dtype="uint8")
    return path


def test_relative_parent_absolute_and_home_paths_are_refused(nodes, comfy, monkeypatch) -> None:
    read_mask = nodes["VfxMatte.ReadMask"]
    monkeypatch.setenv("HOME", "/root-of-someone")
    for given, resolved in ((PASSWD, "/etc/passwd"), ("/etc/shadow", "/etc/shadow"),
                            ("~/.ssh/id_rsa", "/root-of-someone/.ssh/id_rsa")):  # fmt: skip
        text = _refused(read_mask, path=given)
        assert text.startswith(
            f"ComfyUI nodes only read files inside ComfyUI's input folder {comfy.input_dir} "
        ), text
        assert f"'{resolved}' is outside them" in text
        assert "move it there, or set VFXMATTE_COMFYUI_ALLOW_ANY_PATH=1" in text
        assert "on a trusted machine" in text
        with pytest.raises(Exception, match="only read files inside ComfyUI's input folder"):
            read_mask().read(path=given)
        # IS_CHANGED does not look at a refused file (not even its size and date).
        assert read_mask.IS_CHANGED(path=given).startswith("refused: ComfyUI nodes only read")
    for node, key in (("VfxMatte.OpenPlate", "plate"), ("VfxMatte.ReadLabelMap", "path")):
        assert "is outside them" in _refused(nodes[node], **{key: PASSWD})
    assert "is outside them" in _refused(
        nodes["VfxMatte.ReadLabelMap"], path="l.png", segments_info="/etc/passwd"
    )


def test_files_inside_the_input_output_and_temp_folders_are_read(nodes, comfy) -> None:
    read_mask = nodes["VfxMatte.ReadMask"]
    _mask_file(comfy.input_dir / "keys" / "a.png")
    _mask_file(comfy.output_dir / "run" / "b.png")
    _mask_file(comfy.temp_dir / "c.png")
    for given in ("keys/a.png", str(comfy.input_dir / "keys" / "a.png"), "keys/../keys/a.png",
                  "run/b.png [output]", str(comfy.output_dir / "run" / "b.png"),
                  "c.png [temp]"):  # fmt: skip
        assert read_mask.check(path=given) is True, given
        (mask,) = read_mask().read(path=given)
        assert mask.shape == (1, 8, 8) and float(mask.min()) == 1.0


def test_links_that_lead_out_are_outside(nodes, comfy, comfy_shot, tmp_path) -> None:
    outside = _mask_file(tmp_path / "secret" / "key.png")
    (comfy.input_dir / "key.png").symlink_to(outside)
    (comfy.input_dir / "elsewhere").symlink_to(outside.parent, target_is_directory=True)
    for given in ("key.png", "elsewhere/key.png"):
        text = _refused(nodes["VfxMatte.ReadMask"], path=given)
        assert f"leads to '{outside}' through a symbolic link, outside them" in text
    # One frame of a sequence linked to a file elsewhere: the whole plate is refused.
    frame = Path(comfy_shot.frame(comfy_shot.plate, 1003))
    frame.unlink()
    frame.symlink_to(tmp_path / "other.1003.exr")
    text = _refused(nodes["VfxMatte.OpenPlate"], plate=comfy_shot.plate)
    assert f"its frame '{frame}' is a link to '{tmp_path / 'other.1003.exr'}'" in text
    # A link that stays inside is fine.
    (comfy.input_dir / "same.png").symlink_to(_mask_file(comfy.input_dir / "real.png"))
    assert nodes["VfxMatte.ReadMask"].check(path="same.png") is True


def test_outputs_stay_inside_the_output_folder(nodes, comfy, comfy_shot, tmp_path) -> None:
    image = torch.rand(1, 6, 8, 3)
    write = nodes["VfxMatte.WriteEXRSequence"]
    for given in ("../../escape/f.####.exr", str(tmp_path / "f.####.exr"), "~/f.####.exr"):
        text = _refused(write, output=given)
        assert text.startswith(
            f"ComfyUI nodes only write inside ComfyUI's output folder {comfy.output_dir}; "
        ), text
        assert "give a path relative to it, e.g. vfxmatte/f.####.exr" in text
        with pytest.raises(Exception, match="only write inside ComfyUI's output folder"):
            write().write(image, given)
    assert not list(tmp_path.rglob("f.*.exr"))
    assert not (comfy.root.parent / "escape").exists()
    (comfy.output_dir / "linked").symlink_to(tmp_path, target_is_directory=True)
    assert "through a symbolic link" in _refused(write, output="linked/f.####.exr")
    ok = write().write(image, str(comfy.output_dir / "sub" / "f.####.exr"))
    assert ok["result"][0].source == str(comfy.output_dir / "sub" / "f.####.exr")
    shot = nodes["VfxMatte.MatteShot"]
    assert "only write inside" in _refused(shot, output="../m.####.exr")
    assert "only write inside" in _refused(
        shot, output="m.####.exr", guidance_output="/tmp/g.####.exr"
    )
    assert "only write inside" in _refused(nodes["VfxMatte.WritePanoptic"], output="/tmp/p.exr")


def test_matte_shot_paths_keyframes_and_ocio_are_confined(nodes, comfy, comfy_shot) -> None:
    shot = nodes["VfxMatte.MatteShot"]
    assert "is outside them" in _refused(shot, output="m.####.exr", mask=PASSWD)
    assert "is outside them" in _refused(shot, output="m.####.exr", guidance="/etc/g.####.exr")
    assert "is outside them" in _refused(shot, output="m.####.exr", keyframes="1003=/etc/passwd")
    assert shot.check(output="m.####.exr", mask="shot/mask.png") is True
    assert "is outside them" in _refused(nodes["VfxMatte.OpenPlate"], plate="shot/plate/plate.####.exr", ocio="/etc/ocio.ocio")  # fmt: skip
    assert nodes["VfxMatte.Matte"].check(ocio="ocio://default") is True
    # The run itself checks too: a STRING input may come from another node's output.
    plate, *_ = nodes["VfxMatte.OpenPlate"]().open(plate="shot/plate/plate.####.exr")
    with pytest.raises(Exception, match="is outside them"):
        shot().run(plate=plate, output="m.####.exr", mask="/etc/passwd")
    assert not (comfy.output_dir / "m.1001.exr").exists()


def test_weights_come_from_the_model_folders_only(nodes, comfy, tmp_path) -> None:
    folder = comfy.models_dir / "vfxmatte" / "matte"
    folder.mkdir(parents=True)
    (folder / "m.safetensors").write_bytes(b"not really")
    (tmp_path / "x.safetensors").write_bytes(b"elsewhere")
    (folder / "link.safetensors").symlink_to(tmp_path / "x.safetensors")
    loader = nodes["VfxMatte.LoadMatteModel"]
    for given in ("../../../../../../../../etc/passwd", "/etc/passwd", "link.safetensors"):
        text = _refused(loader, weights=given)
        assert text.startswith("ComfyUI nodes only load matte weights from the model folders "), (
            text
        )
        assert (
            "copy the file into one of them (or add its folder to extra_model_paths.yaml as "
            in text
        )
        assert "vfxmatte_matte)" in text
    assert loader.check(weights="m.safetensors") is True
    assert loader.check(weights=str(folder / "m.safetensors")) is True
    # The stage nodes' own weights widgets: in the model folders, by name or path.
    matte = nodes["VfxMatte.Matte"]
    assert "only load matte weights" in _refused(matte, matte_network_weights="/etc/passwd")
    assert "only load colour weights" in _refused(matte, decontaminate_network_weights=PASSWD)
    assert matte.check(matte_network_weights="m.safetensors") is True
    config = matte().config({"matte_network_weights": "m.safetensors"})
    assert config.matte.network.weights == str(folder / "m.safetensors")
    assert "no refine weights file 'r.pt'" in _refused(matte, refine_sparse_weights="r.pt")


def test_a_path_option_added_later_is_held_to_the_input_rule(pack, comfy) -> None:
    confine = pack.folders.confine_options
    with pytest.raises(pack.folders.OutsideFoldersError, match="'/etc/lut.cube' is outside"):
        confine({"matte.classical.lut_file": "/etc/lut.cube"}, pack.host.model_folders)
    inside = confine({"matte.classical.lut_file": "luts/a.cube"}, pack.host.model_folders)
    assert inside == {"matte.classical.lut_file": str(comfy.input_dir / "luts" / "a.cube")}


def test_dask_schedulers_must_be_listed(nodes, comfy, monkeypatch) -> None:
    shot = nodes["VfxMatte.MatteShot"]
    text = _refused(shot, output="m.####.exr", engine_scheduler="tcp://10.0.0.66:8786")
    assert text == (
        "ComfyUI nodes connect only to the Dask schedulers listed in VFXMATTE_COMFYUI_SCHEDULERS "
        "(it is not set): a scheduler runs code in this server, and 'tcp://10.0.0.66:8786' "
        "could be anyone's. Leave engine_scheduler empty (a local cluster on this machine), or "
        "list it in VFXMATTE_COMFYUI_SCHEDULERS on a trusted machine."
    )
    monkeypatch.setenv("VFXMATTE_COMFYUI_SCHEDULERS", "tcp://head:8786, tcp://10.0.0.66:8786")
    assert shot.check(output="m.####.exr", engine_scheduler="tcp://10.0.0.66:8786")
    assert "it lists tcp://head:8786" in _refused(
        shot, output="m.####.exr", engine_scheduler="tcp://elsewhere:8786"
    )


def test_the_owner_can_allow_more_folders_or_any_path(nodes, comfy, tmp_path, monkeypatch) -> None:
    mask = _mask_file(tmp_path / "show" / "key.png")
    read_mask, write = nodes["VfxMatte.ReadMask"], nodes["VfxMatte.WriteEXRSequence"]
    assert read_mask.check(path=str(mask)) is not True
    monkeypatch.setenv("VFXMATTE_COMFYUI_FOLDERS", os.pathsep.join(["/nowhere", str(mask.parent)]))
    assert read_mask.check(path=str(mask)) is True
    assert write.check(output=str(tmp_path / "show" / "o.####.exr")) is True
    assert read_mask.check(path="/etc/passwd") is not True
    monkeypatch.delenv("VFXMATTE_COMFYUI_FOLDERS")
    monkeypatch.setenv("VFXMATTE_COMFYUI_ALLOW_ANY_PATH", "1")
    assert read_mask.check(path=str(mask)) is True
    write().write(torch.rand(1, 4, 4, 3), str(tmp_path / "any" / "o.####.exr"), first_frame=7)
    assert (tmp_path / "any" / "o.0007.exr").is_file()


def test_outside_comfyui_nothing_is_confined(pack, no_comfy, tmp_path) -> None:
    mask = _mask_file(tmp_path / "anywhere" / "key.png")
    assert pack.host.input_path(str(mask)) == str(mask)
    (out,) = pack.NODE_CLASS_MAPPINGS["VfxMatte.ReadMask"]().read(path=str(mask))
    assert out.shape == (1, 8, 8)
    assert pack.host.output_path(str(tmp_path / "o.####.exr")) == str(tmp_path / "o.####.exr")
    assert pack.folders.confine_options({"engine.scheduler": "tcp://x:1"}, None) == {
        "engine.scheduler": "tcp://x:1"
    }


def _real_folder_paths(tmp_path: Path) -> types.ModuleType | None:
    """ComfyUI 0.8.0's own ``folder_paths.py`` (from ../shared/hosts), base folder tmp_path."""
    tarballs = sorted(COMFYUI_TARBALL.glob("comfyui-*.tar.gz"))
    if not tarballs:
        return None
    with tarfile.open(tarballs[-1]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/folder_paths.py"))
        source = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    args = types.SimpleNamespace(base_directory=str(tmp_path))
    cli_args = types.ModuleType("comfy.cli_args")
    cli_args.args = args
    module = types.ModuleType("folder_paths")
    module.__file__ = str(tmp_path / "folder_paths.py")
    saved = sys.modules.get("comfy.cli_args")
    sys.modules["comfy.cli_args"] = cli_args
    try:
        exec(compile(source, "folder_paths.py", "exec"), module.__dict__)  # noqa: S102
    finally:
        if saved is None:
            del sys.modules["comfy.cli_args"]
        else:
            sys.modules["comfy.cli_args"] = saved
    return module


def test_the_rules_agree_with_comfyuis_own_folder_paths(pack, comfy, tmp_path, monkeypatch):
    real = _real_folder_paths(tmp_path / "comfy_base")
    if real is None:
        pytest.skip("the real ComfyUI tree (../shared/hosts/comfyui-*.tar.gz) is not here")
    monkeypatch.setitem(sys.modules, "folder_paths", real)
    output = real.get_output_directory()
    assert output == str(tmp_path / "comfy_base" / "output")
    os.makedirs(output)
    # Saving: ComfyUI's get_save_image_path and the pack refuse the same prefixes.
    for prefix in ("ok/f", "a/../b/f", "../f", "../../x/f", "a/../../f", "/abs/f"):
        try:
            real.get_save_image_path(prefix, output)
            comfy_ok = True
        except Exception:
            comfy_ok = False
        try:
            pack.host.output_path(prefix + ".####.exr")
            ours = True
        except pack.folders.OutsideFoldersError:
            ours = False
        assert ours == comfy_ok, (prefix, comfy_ok)
    # Reading: the annotation picks the folder as ComfyUI's own loaders do.
    for name in ("a.png", "a.png [output]", "a.png [temp]", "a.png [input]"):
        assert pack.host.input_path(name) == real.get_annotated_filepath(name)
    shutil.rmtree(tmp_path / "comfy_base")
