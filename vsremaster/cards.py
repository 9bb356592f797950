"""What is known about particular weights: measured and published quality figures.

`MEASURED` copies the figures of the bundled model's card (models/README.md, "Evaluation":
the paper's protocol, Sec. 5.1, on the five held-out clips, the first frame as the only
reference); a test checks that the card still says them. `PUBLISHED` holds the paper's
figures for the authors' released weights (YouTube-8M clips, 90 frames, one reference).
The clips differ, so the two rows are a guide, not a like-for-like comparison.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quality:
    """PSNR (dB) on L (restoration), on ab (colorization) and on all channels."""

    psnr_l: float
    psnr_ab: float
    psnr_all: float
    where: str


#: Model name (the `_RemasterModel` prop) -> its card's figures.
MEASURED = {
    "vsremaster-lite-step2500": Quality(
        24.79, 27.01, 20.54,
        "models/README.md: 5 held-out clips of openly licensed video, 90 frames, 1 reference"),
}

#: The authors' release (Iizuka & Simo-Serra 2019, Sec. 5.1): restoration PSNR(L),
#: colorization PSNR(ab), remastering PSNR (all channels).
PUBLISHED = Quality(26.13, 34.94, 30.83,
                    "the paper's restoration, colorization and remastering PSNR on "
                    "deteriorated YouTube-8M clips, 90 frames, 1 reference")


def quality_table(name: str) -> list[str] | None:
    """Lines comparing `name`'s card with the release's published figures, or None when
    there is no card for `name`."""
    ours = MEASURED.get(name)
    if ours is None:
        return None
    rows = [(f"{name} (measured)", ours), ("authors' release (published)", PUBLISHED)]
    lines = [f"{'':<38} {'PSNR L':>7} {'PSNR ab':>8} {'PSNR all':>9}"]
    lines += [f"{label:<38} {q.psnr_l:>7.2f} {q.psnr_ab:>8.2f} {q.psnr_all:>9.2f}"
              for label, q in rows]
    lines += [f"{label}: {q.where}" for label, q in (("measured", ours), ("published", PUBLISHED))]
    lines.append("different clips: a guide, not a like-for-like comparison")
    return lines
