"""Structure counts of issue 22, printed so a restructuring can be measured before/after.

Counts (static text scan, no imports):
  * backend-name tests outside the stage packages (``backend == "x"``, ``!=``, ``in (...)``),
    in total and in ``vfxmatte/engine``;
  * ``hasattr``/``getattr`` probes in engine/stages.py, engine/pipeline.py, engine/chunks.py;
  * run drivers: ``class _...Run`` in vfxmatte/engine;
  * engine modules imported by callers outside vfxmatte/engine (cli, nodes, worker, plugins);
  * lines of engine/__init__.py.

Run: ``python benchmarks/layout_counts.py`` from the repository root.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("matte", "propagate", "refine", "decontaminate")
BACKEND_TEST = re.compile(r"backend\s*(==|!=|in\s*\(|not\s+in\s*\()")
PROBE = re.compile(r"\b(hasattr|getattr)\(")
DRIVER = re.compile(r"^class\s+_\w*Run\b", re.M)
ENGINE_IMPORT = re.compile(r"vfxmatte\.engine(\.\w+)?")


def _sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def _in_stage(path: Path) -> bool:
    rel = path.relative_to(ROOT).parts
    return len(rel) > 1 and rel[0] == "vfxmatte" and rel[1] in STAGES


def main() -> None:
    files = [p for p in _sources("vfxmatte", "nodes", "plugins") if not _in_stage(p)]
    tests = {p: len(BACKEND_TEST.findall(p.read_text())) for p in files}
    engine = ROOT / "vfxmatte" / "engine"
    in_engine = sum(n for p, n in tests.items() if engine in p.parents)
    probes = sum(
        len(PROBE.findall(p.read_text()))
        for p in _sources("vfxmatte/engine")
        if p.name in ("stages.py", "pipeline.py", "chunks.py") and p.parent == engine
    )
    drivers = sum(len(DRIVER.findall(p.read_text())) for p in _sources("vfxmatte/engine"))
    callers = [p for p in _sources("vfxmatte", "nodes", "plugins") if engine not in p.parents]
    modules = set()
    for path in callers:
        for match in ENGINE_IMPORT.finditer(path.read_text()):
            modules.add(match.group(0))
    init_lines = len((engine / "__init__.py").read_text().splitlines())
    print(f"backend-name tests outside stages: {sum(tests.values())} (engine/: {in_engine})")
    for path, n in sorted(tests.items()):
        if n:
            print(f"    {path.relative_to(ROOT)}: {n}")
    print(f"hasattr/getattr probes in stages.py, pipeline.py, chunks.py: {probes}")
    print(f"run drivers (class _*Run in engine/): {drivers}")
    print(f"engine modules imported by callers outside engine/: {len(modules)}")
    print(f"engine/__init__.py lines: {init_lines}")


if __name__ == "__main__":
    main()
