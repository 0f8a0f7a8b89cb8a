"""The node pack inside the real ComfyUI 0.8.0: build its venv, start it, drive it over HTTP.

    python tests/hosts/comfyui_real.py [--cache DIR] [--tarball PATH] [--build-only]

Standard library only: it can be started from any Python 3.10+. Steps:

1. Build (or reuse) a virtual environment for ComfyUI under the cache folder
   (``$VFXMATTE_HOST_CACHE``, default ``~/.cache/vfxmatte/hosts``) from the tarball
   ``../shared/hosts/comfyui-0.8.0.tar.gz``, with the set-up checked on this kind of
   machine: the CUDA build of ``torch==2.13.0`` from the package index (pinned as
   ``torch===2.13.0`` so pip skips a local ``+cpu`` wheel) and ``torchvision==0.28.0``
   (ComfyUI's core imports torchvision; the index's wheels need the CUDA torch, which
   runs fine with ``--cpu``), no torchaudio (three audio nodes are skipped), ``requests``
   by hand, ``spandrel`` with ``--no-deps`` (it would pull a newer torch). A stamp file
   records what was installed; a changed tarball or recipe rebuilds.
2. Build a wheel of this checkout and install it into that venv (``--no-deps``, fresh
   each run): ComfyUI sees the library as a studio deploys it, weights included.
3. Start ComfyUI headless (``--cpu``) on 127.0.0.1 with its input/output/custom-node
   folders in a temporary folder (the pack linked in), and check through the HTTP API:
   all pack nodes registered; both example workflows (``nodes/api_workflows``) run and
   match the CLI bit for bit; interrupt stops a long shot within a frame and leaves no
   keyframe files; a bad mask channel fails with one message naming the user's mask;
   a bad widget value gets one ``VALIDATE_INPUTS`` message in widget words; the
   templates listed under ``/workflow_templates`` are UI-format files with thumbnails.
4. Run ``tests/nodes/test_comfyui_integration.py`` in that venv.
5. Stop the server by its PID.

Exit status 0 when every check passed; each check prints one line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARBALL = ROOT.parent / "shared" / "hosts" / "comfyui-0.8.0.tar.gz"
#: Bump when the recipe below changes: a cached venv with another recipe is rebuilt.
RECIPE = 1
TORCH = ["torch===2.13.0", "torchvision==0.28.0"]
SKIPPED = {"torch", "torchvision", "torchaudio", "spandrel"}
START_TIMEOUT = 300.0
RUN_TIMEOUT = 900.0


def log(message: str) -> None:
    print(f"[comfyui_real {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], check=True, **kwargs)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _requirements(tree: Path) -> list[str]:
    """ComfyUI's requirements without the ones installed separately."""
    out = []
    for line in (tree / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line
        for sep in "<>=!~[; ":
            name = name.split(sep, 1)[0]
        if name.lower() not in SKIPPED:
            out.append(line)
    return out


def build_env(cache: Path, tarball: Path) -> tuple[Path, Path]:
    """The ComfyUI tree and its venv's Python, built once per tarball and recipe."""
    stamp_want = {"tarball": _digest(tarball), "recipe": RECIPE, "python": sys.version[:4]}
    tree, venv = cache / "comfyui", cache / "venv"
    stamp = cache / "ready.json"
    python = venv / "bin" / "python"
    if stamp.is_file() and json.loads(stamp.read_text()) == stamp_want and python.is_file():
        log(f"reusing the ComfyUI venv in {cache}")
        return tree, python
    start = time.monotonic()
    log(f"building the ComfyUI venv in {cache} (first run: downloads several GB)")
    stamp.unlink(missing_ok=True)
    for old in (tree, venv):
        if old.exists():
            shutil.rmtree(old)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        with tarfile.open(tarball) as archive:
            archive.extractall(tmp, filter="data")
        (top,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        top.rename(tree)
    sh(sys.executable, "-m", "venv", venv)
    pip = [python, "-m", "pip", "install", "--progress-bar", "off"]
    sh(*pip, *TORCH)
    sh(*pip, *_requirements(tree), "requests")
    sh(*pip, "--no-deps", "spandrel")
    # vfxmatte's own dependencies (the checkout itself is installed fresh each run)
    sh(*pip, f"{ROOT}[classical]", "pytest")
    sh(python, "-m", "pip", "uninstall", "-y", "vfxmatte")
    stamp.write_text(json.dumps(stamp_want))
    log(f"ComfyUI venv built in {time.monotonic() - start:.0f} s")
    return tree, python


# --------------------------------------------------------------------------- the checks

PACK = "vfxmatte_nodes"  # the pack's folder name under custom_nodes/
FRAMES = 6  # the demo shot
LONG = 40  # the shot that is interrupted
COMPARE = r"""
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

a, b = Path(sys.argv[1]), Path(sys.argv[2])
names = sorted(p.relative_to(a) for p in a.rglob("*") if p.suffix in (".exr", ".png"))
assert names, f"nothing written in {a}"
for name in names:
    left, right = oiio.ImageBuf(str(a / name)), oiio.ImageBuf(str(b / name))
    assert not right.has_error, f"{b / name}: {right.geterror()}"
    assert left.spec().channelnames == right.spec().channelnames, name
    x, y = left.get_pixels(oiio.FLOAT), right.get_pixels(oiio.FLOAT)
    assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), (
        f"{name}: differs by up to {np.nanmax(np.abs(x - y))}"
    )
print(len(names))
"""
THUMBS = r"""
import sys
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio

matte, panoptic, plate, out = map(Path, sys.argv[1:5])
previews = sorted(matte.rglob("*.png"))
image = cv2.imread(str(previews[len(previews) // 2]))
cv2.imwrite(str(out / "matte_shot.jpg"), cv2.resize(image, (384, 216), interpolation=cv2.INTER_AREA))
buf = oiio.ImageBuf(str(next(panoptic.glob("*.exr"))))
names, pixels = buf.spec().channelnames, buf.get_pixels(oiio.FLOAT)
rgb = oiio.ImageBuf(str(plate)).get_pixels(oiio.FLOAT)[..., :3]
base = np.clip(rgb, 0, 1) ** (1 / 2.2) * 0.35
palette = np.array([[0.95, 0.45, 0.2], [0.2, 0.7, 0.95], [0.5, 0.9, 0.3], [0.9, 0.3, 0.8],
                    [0.95, 0.85, 0.2], [0.3, 0.4, 0.95]])
layers = [i for i, n in enumerate(names) if n.endswith(".A") and not n.startswith("Crypto")]
for k, i in enumerate(layers):
    base += pixels[..., i : i + 1] * palette[k % len(palette)] * 0.65
image = (np.clip(base, 0, 1)[..., ::-1] * 255).astype(np.uint8)
cv2.imwrite(str(out / "panoptic_layers.jpg"), cv2.resize(image, (384, 216), interpolation=cv2.INTER_AREA))
"""


class Failed(AssertionError):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Failed(what)
    log(f"ok {what[:400]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """ComfyUI started headless on 127.0.0.1, stopped by its PID."""

    def __init__(self, tree: Path, python: Path, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "comfyui.log"
        (root / "extra_model_paths.yaml").write_text(
            f"vfxmatte_real:\n  base_path: {root}\n  custom_nodes: custom_nodes\n",
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        self.started = time.monotonic()
        with open(self.log_path, "w") as log_file:
            self.process = subprocess.Popen(
                [str(python), "main.py", "--cpu", "--listen", "127.0.0.1",
                 "--port", str(self.port), "--input-directory", str(root / "input"),
                 "--output-directory", str(root / "output"),
                 "--extra-model-paths-config", str(root / "extra_model_paths.yaml"),
                 "--disable-auto-launch"],
                cwd=tree, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise Failed(f"ComfyUI exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                self.get("/system_stats")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise Failed("ComfyUI did not start in time") from None
                time.sleep(0.5)
        log(f"ComfyUI {self.process.pid} up in {time.monotonic() - self.started:.0f} s")

    def get(self, path: str, raw: bool = False):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            body = response.read()
        return body if raw else json.loads(body)

    def post(self, path: str, payload: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read()
                return response.status, json.loads(body) if body else {}
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def queue(self, prompt: dict) -> str:
        status, answer = self.post("/prompt", {"prompt": prompt, "client_id": "vfxmatte-real"})
        if status != 200 or answer.get("node_errors"):
            raise Failed(f"POST /prompt refused ({status}): {json.dumps(answer)[:3000]}")
        return answer["prompt_id"]

    def wait(self, prompt_id: str) -> dict:
        deadline = time.monotonic() + RUN_TIMEOUT
        while prompt_id not in (history := self.get(f"/history/{prompt_id}")):
            if time.monotonic() > deadline:
                raise Failed(f"prompt {prompt_id} did not finish in time")
            if self.process.poll() is not None:
                raise Failed(f"ComfyUI died:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        return history[prompt_id]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        log(f"ComfyUI {self.process.pid} stopped")


def _messages(entry: dict, kind: str) -> list[dict]:
    return [m[1] for m in entry["status"].get("messages", []) if m[0] == kind]


def _example(name: str) -> dict:
    return json.loads((ROOT / "nodes" / "api_workflows" / f"{name}_api.json").read_text())


def _matte_prompt(shot: str, output: str, **widgets) -> dict:
    prompt = _example("matte_shot")
    prompt["1"]["inputs"]["plate"] = f"{shot}/plate/plate.####.exr"
    prompt["2"]["inputs"]["path"] = f"{shot}/mask.png"
    prompt["3"]["inputs"].update(output=output, **widgets)
    return prompt


def checks(tree: Path, python: Path, work: Path, thumbnails: bool) -> None:
    root = work / "comfy"
    (root / "custom_nodes").mkdir(parents=True)
    (root / "custom_nodes" / PACK).symlink_to(ROOT / "nodes")
    (root / "output").mkdir()
    vfxmatte = python.parent / "vfxmatte"
    inp = root / "input"
    sh(vfxmatte, "synth", inp / "vfxmatte_demo", "--width", "192", "--height", "108",
       "--frames", FRAMES, "--objects", "2", stdout=subprocess.DEVNULL)  # fmt: skip
    sh(vfxmatte, "synth", inp / "vfxmatte_long", "--width", "320", "--height", "180",
       "--frames", LONG, "--objects", "2", stdout=subprocess.DEVNULL)  # fmt: skip
    server = Server(tree, python, root)
    try:
        _server_checks(server, python, root, thumbnails)
    finally:
        server.stop()


def _server_checks(server: Server, python: Path, root: Path, thumbnails: bool) -> None:
    info = server.get("/object_info")
    pack = sorted(k for k in info if k.startswith("VfxMatte."))
    text = server.log_path.read_text()
    load = next((ln.strip() for ln in text.splitlines() if PACK in ln and "seconds" in ln), "?")
    expect(len(pack) >= 18 and all("input" in info[k] for k in pack),
           f"nodes registered: {len(pack)} VfxMatte nodes, import '{load}'")  # fmt: skip
    expect(not any(f"{PACK}" in ln and "IMPORT FAILED" in ln for ln in text.splitlines()),
           "the pack imported without errors")  # fmt: skip

    # templates: UI-format files with thumbnails; the pack's front-end extension
    templates = server.get("/workflow_templates").get(PACK, [])
    expect(sorted(templates) == ["matte_shot", "panoptic_layers"],
           f"templates listed: {templates}")  # fmt: skip
    for name in templates:
        ui = server.get(f"/api/workflow_templates/{PACK}/{name}.json")
        expect("nodes" in ui and "links" in ui and "version" in ui,
               f"template {name} is UI format")  # fmt: skip
        if not thumbnails:
            jpg = server.get(f"/api/workflow_templates/{PACK}/{name}.jpg", raw=True)
            expect(jpg[:3] == b"\xff\xd8\xff", f"template {name} has a JPEG thumbnail")
    scripts = server.get("/extensions")
    expect(any(s.startswith(f"/extensions/{PACK}/") for s in scripts),
           f"the pack's web extension is served: {[s for s in scripts if PACK in s]}")  # fmt: skip

    # both example workflows, against the CLI
    start = time.monotonic()
    entry = server.wait(server.queue(_example("matte_shot")))
    expect(entry["status"]["status_str"] == "success", f"matte_shot ran: {entry['status']}")
    summary = entry["outputs"]["3"]["text"][0]
    expect(summary.startswith(f"{FRAMES} frame(s) written"), f"summary shown: {summary!r}")
    log(f"matte_shot in ComfyUI: {time.monotonic() - start:.1f} s")
    out = root / "output" / "vfxmatte_demo_matte"
    expect(not (out / "keyframes").exists(), "no keyframe files left after the run")
    inp = root / "input" / "vfxmatte_demo"
    cli = root / "cli"
    vfxmatte = python.parent / "vfxmatte"
    sh(vfxmatte, "matte", inp / "plate" / "plate.####.exr", "-m", inp / "mask.png",
       "-o", cli / "matte" / "shot.####.exr", "--outputs", "rgba,alpha,fg", "--preview",
       "checker", stdout=subprocess.DEVNULL)  # fmt: skip
    same = sh(python, "-c", COMPARE, out, cli / "matte", capture_output=True, text=True)
    expect(True, f"matte_shot matches the CLI bit for bit: {same.stdout.strip()} files")

    entry = server.wait(server.queue(_example("panoptic_layers")))
    expect(entry["status"]["status_str"] == "success", f"panoptic_layers ran: {entry['status']}")
    sh(vfxmatte, "panoptic", inp / "plate" / "plate.1001.exr", "--labels",
       inp / "gt" / "labels.1001.png", "-o", cli / "panoptic" / "panoptic.1001.exr",
       stdout=subprocess.DEVNULL)  # fmt: skip
    same = sh(python, "-c", COMPARE, root / "output" / "vfxmatte_demo_panoptic",
              cli / "panoptic", capture_output=True, text=True)  # fmt: skip
    expect(True, f"panoptic_layers matches the CLI bit for bit: {same.stdout.strip()} files")
    if thumbnails:
        target = ROOT / "nodes" / "example_workflows"
        sh(python, "-c", THUMBS, out, root / "output" / "vfxmatte_demo_panoptic",
           inp / "plate" / "plate.1001.exr", target)  # fmt: skip
        log(f"thumbnails written to {target}")

    # interrupt: a 40-frame shot stopped after its second frame
    long_out = root / "output" / "vfxmatte_long_matte"
    prompt_id = server.queue(_matte_prompt("vfxmatte_long", "vfxmatte_long_matte/shot.####.exr"))
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(list(long_out.glob("shot.*.exr"))) < 2:
        if time.monotonic() > deadline or prompt_id in server.get(f"/history/{prompt_id}"):
            raise Failed("the long shot finished or stalled before it could be interrupted")
        time.sleep(0.05)
    at_interrupt = len(list(long_out.glob("shot.*.exr")))
    stopped = time.monotonic()
    server.post("/interrupt", {})
    entry = server.wait(prompt_id)
    after = len(list(long_out.glob("shot.*.exr")))
    expect(_messages(entry, "execution_interrupted") != [],
           f"interrupt: {entry['status']['status_str']}")  # fmt: skip
    expect(after - at_interrupt <= 1 and after < LONG,
           f"interrupt stopped within a frame: {at_interrupt} frames at the interrupt, "
           f"{after} after, in {time.monotonic() - stopped:.1f} s")  # fmt: skip
    expect(not (long_out / "keyframes").exists(), "no keyframe files left after the interrupt")

    # a failed run: a mask channel the mask does not have
    prompt = _matte_prompt("vfxmatte_demo", "vfxmatte_bad/shot.####.exr",
                           input_mask_channel="mask.matte")  # fmt: skip
    entry = server.wait(server.queue(prompt))
    errors = _messages(entry, "execution_error")
    expect(entry["status"]["status_str"] == "error" and len(errors) == 1,
           f"a bad mask channel fails once: {entry['status']}")  # fmt: skip
    message = errors[0]["exception_message"]
    expect("key_mask" in message and "keyframes" not in message and "_key." not in message,
           f"the error names the user's mask, not a temporary file: {message!r}")  # fmt: skip
    expect(not (root / "output" / "vfxmatte_bad" / "keyframes").exists(),
           "no keyframe files left after the failure")  # fmt: skip

    # a bad widget value: one message, in widget words
    prompt = _matte_prompt("vfxmatte_demo", "vfxmatte_bad2/shot.####.exr",
                           propagate_backend="flw")  # fmt: skip
    status, answer = server.post("/prompt", {"prompt": prompt, "client_id": "vfxmatte-real"})
    refused = answer.get("node_errors", {}).get("3", {}).get("errors", [])
    if refused:
        expect(len(refused) == 1, f"a bad widget is refused once, not per input: {len(refused)}")
        message = refused[0]["details"]
    else:
        entry = server.wait(answer["prompt_id"])
        errors = _messages(entry, "execution_error")
        expect(len(errors) == 1, f"a bad widget fails with one message: {len(errors)}")
        message = errors[0]["exception_message"]
    expect("flow" in message and "--" not in message,
           f"its message names the widget's choices: {message!r}")  # fmt: skip


def run_integration_test(tree: Path, python: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(COMFYUI_DIR=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run(
        [str(python), "-m", "pytest", "-v", "-p", "no:cacheprovider", "-rs",
         "tests/nodes/test_comfyui_integration.py"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    passed = re.search(r"(\d+) passed", result.stdout)
    skipped = re.search(r"(\d+) skipped", result.stdout)
    expect(result.returncode == 0 and passed is not None and skipped is None,
           f"tests/nodes/test_comfyui_integration.py: {passed and passed.group(0)}, exit "
           f"{result.returncode}\n{result.stdout[-3000:]}")  # fmt: skip


def install_checkout(python: Path, work: Path) -> None:
    start = time.monotonic()
    dist = work / "dist"
    pip = [python, "-m", "pip"]
    sh(*pip, "wheel", "--no-deps", "-q", "-w", dist, ROOT)
    (wheel,) = dist.glob("vfxmatte-*.whl")
    sh(*pip, "install", "-q", "--no-deps", "--force-reinstall", wheel)
    log(f"installed {wheel.name} into the ComfyUI venv in {time.monotonic() - start:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("VFXMATTE_HOST_CACHE") or "~/.cache/vfxmatte/hosts"
    parser.add_argument("--cache", default=default, help=f"cache folder (default {default})")
    parser.add_argument("--tarball", default=str(TARBALL), help="the ComfyUI 0.8.0 tarball")
    parser.add_argument("--build-only", action="store_true", help="build the venv, then stop")
    parser.add_argument("--thumbnails", action="store_true",
                        help="write the templates' thumbnails from this run's outputs")  # fmt: skip
    args = parser.parse_args()
    tarball = Path(args.tarball)
    if not tarball.is_file():
        log(f"SKIPPED: no ComfyUI tarball at {tarball}")
        return 0 if os.environ.get("VFXMATTE_REAL_COMFYUI") != "1" else 1
    start = time.monotonic()
    cache = Path(args.cache).expanduser() / "comfyui-0.8.0"
    tree, python = build_env(cache, tarball)
    if args.build_only:
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="vfxmatte-comfyui-") as tmp:
            work = Path(tmp)
            install_checkout(python, work)
            checks(tree, python, work, args.thumbnails)
            run_integration_test(tree, python)
    except (Failed, subprocess.CalledProcessError) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else ""
        log(f"FAILED: {exc}\n{detail or ''}")
        return 1
    log(f"all passed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
