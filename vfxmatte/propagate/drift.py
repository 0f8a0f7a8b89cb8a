"""The drift report: how far each propagated frame can be trusted, and where to add a keyframe.

A propagator that can measure itself (``snapcut``) gives every frame a
:class:`DriftSample` from three signs of a propagation going wrong:

* forward-backward disagreement: the share of the object whose flow does not
  come back to where it started (motion the flow does not follow);
* colour: against the keyframe, with the keyframe colour models: the object's
  pixels are less object-like (the mask has slid onto background), or the ring
  just outside the mask is more object-like than the background beyond it (the
  mask has lost part of the object). A background that merely looks more like
  the object raises both rings alike and is not counted;
* area jump: the change of the object's area from the frame before.

Each gives a factor in (0, 1]; the frame's confidence is their product. Runs of
frames under a threshold become sentences such as "frames 1031-1040 look
unreliable: add a keyframe near 1035".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = ["DRIFT_THRESHOLD", "DriftReport", "DriftSample", "frame_confidence"]

#: Frames whose confidence is below this are reported as unreliable.
DRIFT_THRESHOLD = 0.5

# Scales of the three factors: the value at which each alone gives exp(-1) ~ 0.37.
_FB_SCALE = 0.35
_COLOUR_SCALE = 0.4
_AREA_SCALE = 0.25


def frame_confidence(fb_disagreement: float, colour_drop: float, area_change: float) -> float:
    """Confidence in [0, 1] of one frame from its three measures (see the module docstring).

    Args:
        fb_disagreement: share in [0, 1] of the object failing the round trip.
        colour_drop: loss of colour separation against the keyframe, in [0, 1]
            (0: as well separated as on the keyframe; negative counts as 0).
        area_change: ``|log(area / previous area)|``.
    """
    score = (fb_disagreement / _FB_SCALE) ** 2
    score += (max(0.0, colour_drop) / _COLOUR_SCALE) ** 2
    score += (area_change / _AREA_SCALE) ** 2
    return float(math.exp(-score))


@dataclass(frozen=True)
class DriftSample:
    """The measures of one frame (see the module docstring) and its confidence."""

    confidence: float
    fb_disagreement: float = 0.0
    colour_drop: float = 0.0
    area_change: float = 0.0
    keyframe: bool = False


@dataclass
class DriftReport:
    """Frame number -> :class:`DriftSample` over a shot (or the frames a run propagated)."""

    samples: dict[int, DriftSample] = field(default_factory=dict)
    threshold: float = DRIFT_THRESHOLD

    def add(self, number: int, sample: DriftSample) -> None:
        """Record a frame; a frame seen twice (the keyframe of both passes) keeps the lower."""
        old = self.samples.get(number)
        if old is None or sample.confidence < old.confidence:
            self.samples[number] = sample

    def confidence(self) -> dict[int, float]:
        """Frame number -> confidence, in frame order."""
        return {n: s.confidence for n, s in sorted(self.samples.items())}

    def unreliable(self) -> list[tuple[int, int, int]]:
        """Runs of consecutive frames below the threshold: ``(first, last, suggested key)``.

        Frames are consecutive when no frame of the report lies between them.
        The suggested keyframe is the run's middle frame.
        """
        runs: list[list[int]] = []
        previous_bad = False
        for number, sample in sorted(self.samples.items()):
            bad = sample.confidence < self.threshold
            if bad and previous_bad:
                runs[-1].append(number)
            elif bad:
                runs.append([number])
            previous_bad = bad
        return [(r[0], r[-1], r[len(r) // 2]) for r in runs]

    def sentences(self) -> list[str]:
        """One sentence per unreliable run, e.g. "frames 1031-1040 look unreliable: ..."."""
        out = []
        for first, last, key in self.unreliable():
            which = f"frame {first} looks" if first == last else f"frames {first}-{last} look"
            out.append(f"{which} unreliable: add a keyframe near {key}")
        return out

    def summary(self) -> str:
        """One line for the end of a run."""
        if not self.samples:
            return ""
        lowest = min(self.samples.items(), key=lambda item: item[1].confidence)
        sentences = self.sentences()
        if not sentences:
            return (
                f"propagation drift: every frame looks reliable (lowest confidence "
                f"{lowest[1].confidence:.2f} at frame {lowest[0]})"
            )
        return "propagation drift: " + "; ".join(sentences)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form: threshold, unreliable runs and every frame's measures."""
        return {
            "threshold": self.threshold,
            "unreliable": [list(r) for r in self.unreliable()],
            "frames": {str(n): asdict(s) for n, s in sorted(self.samples.items())},
        }
