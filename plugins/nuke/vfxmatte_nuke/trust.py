"""What a VfxMatte node saved in a shared script may make this machine run.

The node's *worker python* knob names an executable that Process and Farm start,
and its *engine scheduler* knob a Dask scheduler whose answers the worker
unpickles: both are saved in the ``.nk`` script, and a script from someone else
can name any program or any machine there. So a knob value wins only when the
artist allows it:

* interpreters: *Preferences > vfxmatte > worker python*, ``VFXMATTE_PYTHON``,
  and the lists *Preferences > vfxmatte > allowed worker pythons* and
  ``VFXMATTE_ALLOWED_PYTHONS`` (``os.pathsep``- or newline-separated); paths are
  compared as given, made absolute, not through their links (a venv's
  ``bin/python`` links to the same base interpreter as every other venv's);
* schedulers: *Preferences > vfxmatte > allowed schedulers* and
  ``VFXMATTE_ALLOWED_SCHEDULERS`` (comma-separated).

Anything else is asked about in a dialog (``nuke.ask``) naming the node, the value
and the risk; a yes is remembered for the session (a no is asked again next time).
Without a GUI (``nuke -t``, a render farm) there is nobody to ask: it is refused
with a sentence that says how to allow it.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Iterable, Mapping

from vfxmatte_nuke import nuke_api
from vfxmatte_nuke.errors import PluginError

__all__ = [
    "ALLOWED_PYTHONS",
    "ALLOWED_PYTHONS_KNOB",
    "ALLOWED_SCHEDULERS",
    "ALLOWED_SCHEDULERS_KNOB",
    "check_python",
    "check_scheduler",
    "forget",
]

ALLOWED_PYTHONS = "VFXMATTE_ALLOWED_PYTHONS"
ALLOWED_SCHEDULERS = "VFXMATTE_ALLOWED_SCHEDULERS"
ALLOWED_PYTHONS_KNOB = "vfxmatte_allowed_pythons"
ALLOWED_SCHEDULERS_KNOB = "vfxmatte_allowed_schedulers"

_PYTHON_LISTS = (
    "Preferences > vfxmatte > worker python / allowed worker pythons, VFXMATTE_PYTHON or "
    + ALLOWED_PYTHONS
)
_SCHEDULER_LISTS = f"Preferences > vfxmatte > allowed schedulers or {ALLOWED_SCHEDULERS}"

#: (kind, value) the artist said yes to in this session.
_APPROVED: set = set()


def forget() -> None:
    """Forget the session's answers (the next unlisted value is asked about again)."""
    _APPROVED.clear()


def _paths(text: str) -> list[str]:
    return [p.strip() for p in re.split(f"[\n{re.escape(os.pathsep)}]", text or "") if p.strip()]


def _executable(value: str) -> str:
    """``value`` as an absolute path: a file as given, a bare name looked up on PATH."""
    found = value if os.path.isfile(value) else (shutil.which(value) or value)
    return os.path.normcase(os.path.abspath(found))


def _ask_or_refuse(kind: str, value: str, question: str, refusal: str, no_gui: str) -> None:
    if (kind, value) in _APPROVED:
        return
    if not nuke_api.is_gui():
        raise PluginError(no_gui)
    if not nuke_api.ask(question):
        raise PluginError(refusal)
    _APPROVED.add((kind, value))


def check_python(
    python: str, node: str, preference: str = "", environ: Mapping[str, str] | None = None
) -> None:
    """Allow the worker Python ``python`` that node ``node``'s knob names, or raise.

    Listed interpreters pass; others are asked about (GUI) or refused (no GUI).

    Raises:
        PluginError: the artist said no, or there is no GUI to ask.
    """
    environ = os.environ if environ is None else environ
    allowed: Iterable[str] = [
        preference,
        environ.get("VFXMATTE_PYTHON", ""),
        *_paths(environ.get(ALLOWED_PYTHONS, "")),
        *_paths(str(nuke_api.preference(ALLOWED_PYTHONS_KNOB, "") or "")),
    ]
    wanted = _executable(python)
    if any(_executable(a.strip()) == wanted for a in allowed if a and a.strip()):
        return
    _ask_or_refuse(
        "python",
        wanted,
        question=(
            f"The VfxMatte node '{node}' of this script asks to run the worker Python\n\n"
            f"    {python}\n\nwhich is not one you allow ({_PYTHON_LISTS}). A script from "
            "someone else can name any program here, and it would run as you.\n\n"
            "Run it (this session)?"
        ),
        refusal=(
            f"Not run: you did not allow the worker Python '{python}' that {node}'s 'worker "
            "python' knob names. Clear the knob to use your own, or add it to Preferences > "
            f"vfxmatte > allowed worker pythons (or {ALLOWED_PYTHONS})."
        ),
        no_gui=(
            f"{node}'s 'worker python' knob names '{python}', which is not among the "
            f"interpreters you allow ({_PYTHON_LISTS}); without a GUI to ask you, it is not "
            f"run. Add it to {ALLOWED_PYTHONS} if you trust it, or clear the knob to use "
            "your own."
        ),
    )


def check_scheduler(address: str, node: str, environ: Mapping[str, str] | None = None) -> None:
    """Allow the Dask scheduler ``address`` that node ``node``'s knob names, or raise.

    Raises:
        PluginError: the artist said no, or there is no GUI to ask.
    """
    environ = os.environ if environ is None else environ
    listed = f"{environ.get(ALLOWED_SCHEDULERS, '')},"
    listed += str(nuke_api.preference(ALLOWED_SCHEDULERS_KNOB, "") or "")
    address = address.strip()
    if address in {a.strip() for a in re.split(r"[,\s]+", listed) if a.strip()}:
        return
    _ask_or_refuse(
        "scheduler",
        address,
        question=(
            f"The VfxMatte node '{node}' of this script asks the worker to connect to the Dask "
            f"scheduler\n\n    {address}\n\nwhich is not one you allow ({_SCHEDULER_LISTS}). "
            "A scheduler can make the worker run any code as you.\n\nConnect (this session)?"
        ),
        refusal=(
            f"Not run: you did not allow the Dask scheduler '{address}' that {node}'s 'engine "
            "scheduler' knob names. Clear the knob (a local cluster), or add it to Preferences "
            f"> vfxmatte > allowed schedulers (or {ALLOWED_SCHEDULERS})."
        ),
        no_gui=(
            f"{node}'s 'engine scheduler' knob names the Dask scheduler '{address}', which is "
            f"not among those you allow ({_SCHEDULER_LISTS}); without a GUI to ask you, the "
            f"worker does not connect to it. Add it to {ALLOWED_SCHEDULERS} if you trust it."
        ),
    )
