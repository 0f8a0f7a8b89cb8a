"""Peak resident memory of this process, in MB."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """The high-water mark of resident memory (``VmHWM``) of this process.

    ``ru_maxrss`` survives ``exec`` on Linux, so a spawned child would report its
    parent's peak; ``VmHWM`` belongs to the child's own address space.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
