"""A script's worker python and scheduler knobs run only what the artist allows (trust.py).

A .nk script from someone else can name any program in the node's 'worker python'
knob and any machine in its 'engine scheduler' knob. The preference, VFXMATTE_PYTHON
and the allowed lists pass; anything else is asked about (nuke.ask) in the GUI, a yes
remembered for the session, and refused with a sentence without a GUI.
"""

from __future__ import annotations

import os
import sys

import pytest
import vfxmatte_nuke.process as process_module
from vfxmatte_nuke import startup, trust
from vfxmatte_nuke.errors import PluginError
from vfxmatte_nuke.node import create_node
from vfxmatte_nuke.process import farm, on_process, process
from vfxmatte_nuke.schema import load_schema

from vfxmatte.io.image import read_image


class _Client:
    """A worker that matted one frame."""

    info = {"schema_digest": load_schema()["digest"], "vfxmatte": "0.1.0"}

    def run(self, config, on_message=None, is_cancelled=None):
        return {"ok": True, "written": [1001], "reused": [], "summary": "1 frame(s) written"}


def _upstream(fake, node_class, render):
    node = fake.nodes.__getattr__(node_class)()
    node.render, node.range = render, (1001, 1001)
    return node


@pytest.fixture
def scene(fake_nuke, nuke_shot, tmp_path, monkeypatch):
    """A saved script with a VfxMatte node; get_client records the python it is given."""
    fake_nuke.root_node["name"].setValue(str(tmp_path / "shot.nk"))
    plate = read_image(nuke_shot.frame(nuke_shot.plate, 1001)).pixels
    fake_nuke.selected = _upstream(fake_nuke, "Grade", lambda n: plate)
    group = create_node()
    mask = read_image(nuke_shot.mask).pixels[..., :1].repeat(4, axis=2)
    group.setInput(1, _upstream(fake_nuke, "Roto", lambda n: mask))
    fake_nuke.this = group
    started: list[str] = []

    def get_client(python):
        started.append(python)
        return _Client()

    monkeypatch.setattr(process_module, "get_client", get_client)
    startup.add_menus()  # the preference knobs
    return fake_nuke, group, started


@pytest.fixture
def pythons(stand_in_python):
    """Two executables: the artist's own worker python and the one a shared script names."""
    return stand_in_python("pass", name="mine"), stand_in_python("pass", name="theirs")


def test_the_artists_own_interpreters_run_without_asking(scene, pythons, monkeypatch) -> None:
    fake, group, started = scene
    mine, theirs = pythons
    fake.preferences["vfxmatte_python"].setValue(mine)
    on_process()  # knob empty: the preference
    group["worker_python"].setValue(mine)  # the knob names the preference
    on_process()
    group["worker_python"].setValue(theirs)
    monkeypatch.setenv("VFXMATTE_PYTHON", theirs)
    on_process()
    monkeypatch.delenv("VFXMATTE_PYTHON")
    monkeypatch.setenv("VFXMATTE_ALLOWED_PYTHONS", os.pathsep.join(["/opt/a/python", theirs]))
    on_process()
    monkeypatch.delenv("VFXMATTE_ALLOWED_PYTHONS")
    fake.preferences["vfxmatte_allowed_pythons"].setValue(f"/opt/a/python\n{theirs}")
    on_process()
    assert started == [mine, mine, theirs, theirs, theirs]
    assert fake.asked == [] and fake.messages == []


def test_another_interpreter_is_asked_about_once_per_session(scene, pythons) -> None:
    fake, group, started = scene
    mine, theirs = pythons
    fake.preferences["vfxmatte_python"].setValue(mine)
    group["worker_python"].setValue(theirs)
    on_process()  # the artist says No
    assert started == [] and len(fake.asked) == 1
    question = fake.asked[0]
    assert "The VfxMatte node 'VfxMatte' of this script asks to run the worker Python" in question
    assert theirs in question and "it would run as you" in question
    assert fake.messages == [
        f"VfxMatte: Not run: you did not allow the worker Python '{theirs}' that VfxMatte's "
        "'worker python' knob names. Clear the knob to use your own, or add it to Preferences > "
        "vfxmatte > allowed worker pythons (or VFXMATTE_ALLOWED_PYTHONS)."
    ]
    fake.answer = True
    on_process()  # asked again, Yes
    on_process()  # remembered for the session
    assert started == [theirs, theirs] and len(fake.asked) == 2
    trust.forget()  # a new session asks again
    on_process()
    assert len(fake.asked) == 3


def test_a_link_to_an_allowed_interpreter_is_another_interpreter(scene, pythons, tmp_path):
    # A venv's bin/python links to the base interpreter, like every other venv's: the
    # environment is what the path says, so links are not followed.
    fake, group, started = scene
    mine, _ = pythons
    fake.preferences["vfxmatte_python"].setValue(mine)
    link = tmp_path / "other_env" / "python"
    link.parent.mkdir()
    link.symlink_to(mine)
    group["worker_python"].setValue(str(link))
    on_process()
    assert started == [] and len(fake.asked) == 1 and str(link) in fake.asked[0]


def test_without_a_gui_an_unlisted_interpreter_is_refused(scene, pythons) -> None:
    fake, group, started = scene
    mine, theirs = pythons
    fake.GUI = False
    fake.preferences["vfxmatte_python"].setValue(mine)
    group["worker_python"].setValue(theirs)
    with pytest.raises(PluginError) as caught:
        process(group)
    assert str(caught.value) == (
        f"VfxMatte's 'worker python' knob names '{theirs}', which is not among the interpreters "
        "you allow (Preferences > vfxmatte > worker python / allowed worker pythons, "
        "VFXMATTE_PYTHON or VFXMATTE_ALLOWED_PYTHONS); without a GUI to ask you, it is not run. "
        "Add it to VFXMATTE_ALLOWED_PYTHONS if you trust it, or clear the knob to use your own."
    )
    with pytest.raises(PluginError, match="without a GUI to ask you"):
        farm(group)
    assert started == [] and fake.asked == []
    on_process()  # the button in a terminal session prints the sentence
    assert "without a GUI to ask you" in fake.printed[-1]


def test_a_scheduler_named_by_the_script_is_asked_about(scene, monkeypatch) -> None:
    fake, group, started = scene
    monkeypatch.setenv("VFXMATTE_PYTHON", sys.executable)
    group["engine_scheduler"].setValue("tcp://10.0.0.66:8786")
    on_process()  # executor local: the scheduler is not used, nothing to ask
    assert started == [sys.executable] and fake.asked == []
    group["engine_executor"].setValue("dask")
    on_process()  # No
    assert len(started) == 1 and len(fake.asked) == 1
    assert (
        "connect to the Dask scheduler" in fake.asked[0] and "tcp://10.0.0.66:8786" in fake.asked[0]
    )
    assert "you did not allow the Dask scheduler 'tcp://10.0.0.66:8786'" in fake.messages[-1]
    monkeypatch.setenv("VFXMATTE_ALLOWED_SCHEDULERS", "tcp://head:8786,tcp://10.0.0.66:8786")
    on_process()
    assert len(started) == 2 and len(fake.asked) == 1
    monkeypatch.delenv("VFXMATTE_ALLOWED_SCHEDULERS")
    fake.GUI = False
    with pytest.raises(PluginError, match="without a GUI to ask you, the worker does not connect"):
        process(group)


def test_preferences_hold_the_allowed_lists(fake_nuke) -> None:
    startup.add_menus()
    for name in ("vfxmatte_python", "vfxmatte_allowed_pythons", "vfxmatte_allowed_schedulers"):
        assert name in fake_nuke.preferences.knobs()
    assert "asking you" in fake_nuke.preferences["vfxmatte_allowed_pythons"].tooltip
