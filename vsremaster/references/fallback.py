"""What a scene without colour references gets.

DeepRemaster colours a scene from its references; without any, the colorization network
can only guess. For weights whose guesses were measured to be worse than leaving the
frames grey (mean |ab error| on the held-out evaluation clips), such scenes are kept
grey (neutral chroma, the restored luma) and their frames say so in `_RemasterNote`.

A weights file says which kind it is with the metadata entry `without_refs` ("grey" or
"colour"); models measured before that entry existed are listed in `GREY_WITHOUT_REFS`.
"""
from __future__ import annotations

from collections.abc import Mapping

META_KEY = "without_refs"
NOTE_PROP = "_RemasterNote"
#: The model's ab (in [0, 1]) of a grey pixel: a* = b* = 0
NEUTRAL_AB = 128.0 / 255.0

#: Model name -> the measurement that put it here (models/README.md has the details).
GREY_WITHOUT_REFS = {
    "vsremaster-lite-step2500": "mean |ab error| 16.21 without references against 14.79 "
                                "for grey frames, on the five held-out evaluation clips",
}


def keeps_grey(name: str, meta: Mapping | None = None) -> bool:
    """Whether the weights `name` (with file metadata `meta`) keep reference-less scenes grey."""
    flag = (meta or {}).get(META_KEY)
    if flag in ("grey", "colour"):
        return flag == "grey"
    return name in GREY_WITHOUT_REFS


def why_grey(name: str, meta: Mapping | None = None) -> str:
    """One line saying why `name` keeps reference-less scenes grey (for `info` and notes)."""
    measured = GREY_WITHOUT_REFS.get(name)
    if measured and (meta or {}).get(META_KEY) in (None, "grey"):
        return f"without references {name} colours worse than grey ({measured})"
    return f"the weights {name} are marked {META_KEY}=grey (they colour worse than grey without references)"


def note(name: str, meta: Mapping | None = None) -> str:
    """The `_RemasterNote` of a frame kept grey."""
    return (f"kept grey: this scene has no colour references, and {why_grey(name, meta)}; "
            f"give refs=, or use the authors' weights (see `python -m vsremaster info`)")
