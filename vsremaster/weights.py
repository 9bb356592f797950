"""Where the weights live: the search order, and downloading the authors' release.

Search order (`find_weights`): an explicit path, the `VSREMASTER_WEIGHTS` environment
variable, the user data directory, the bundled model's folder (`bundled_dir`). A folder
in the first two places is searched like the user data directory.

The authors' `remasternet.pth.tar` (CC BY-NC-SA 4.0) is not redistributed; `fetch` (or
`python -m vsremaster fetch`) downloads it into the user data directory.
"""
from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import platformdirs

from .model.checkpoint import CheckpointError, load_checkpoint, md5sum

AUTHORS_URL = "http://iizuka.cs.tsukuba.ac.jp/data/remasternet.pth.tar"
AUTHORS_MD5 = "1219f5830e4a7208b1c7ba2f089a16c8"
AUTHORS_FILENAME = "remasternet.pth.tar"
ENV_WEIGHTS = "VSREMASTER_WEIGHTS"
ENV_FETCH_URL = "VSREMASTER_FETCH_URL"
ENV_FETCH_MD5 = "VSREMASTER_FETCH_MD5"

_CHUNK = 1 << 20


class WeightsNotFoundError(CheckpointError, FileNotFoundError):
    """No weights file in any of the places searched; the message lists them."""


class FetchError(CheckpointError):
    """A download that failed or did not match its MD5."""


def user_data_dir() -> Path:
    """The per-user data folder for vsremaster: platformdirs' (`$XDG_DATA_HOME/vsremaster`
    or `~/.local/share/vsremaster`; `%LOCALAPPDATA%\\vsremaster` on Windows), except on
    macOS, where it is always `~/Library/Application Support/vsremaster`: platformdirs
    would take a set `$XDG_DATA_HOME` first there, and weights fetched earlier would go
    unfound."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "vsremaster"
    return Path(platformdirs.user_data_dir("vsremaster", appauthor=False))


def bundled_dir() -> Path:
    """The bundled model's folder: `models` inside the installed package (the wheel
    carries it there, setup.py), or the top-level `models/` of a source checkout, which
    is the same folder before it is built into a wheel."""
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if not (package / "models").is_dir() and (checkout / "setup.py").is_file():
        return checkout / "models"
    return package / "models"


def _weights_in(folder: Path) -> Path | None:
    # The authors' file wins over the project's (possibly lite) safetensors models.
    if not folder.is_dir():
        return None
    authors = folder / AUTHORS_FILENAME
    if authors.is_file():
        return authors
    found = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    return found[0] if found else None


def _given(path: Path, what: str) -> Path:
    if path.is_dir():
        found = _weights_in(path)
        if found is None:
            raise WeightsNotFoundError(f"{what} {path} is a folder without "
                                       f"{AUTHORS_FILENAME} or *.safetensors\n{how_to_get()}")
        return found
    if not path.exists():
        raise WeightsNotFoundError(f"{what} {path} does not exist\n{how_to_get()}")
    return path


def search_places() -> list[tuple[str, Path]]:
    """(description, folder) of the places searched after an explicit path and the env var."""
    return [("user data directory", user_data_dir()), ("bundled models", bundled_dir())]


def find_weights(path=None) -> Path:
    """The weights file to use; raises WeightsNotFoundError listing every place tried."""
    if path is not None:
        return _given(Path(path).expanduser(), "weights path")
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        # A set-but-wrong variable is a mistake to report, not to silently skip.
        return _given(Path(env).expanduser(), f"${ENV_WEIGHTS} =")
    for _, folder in search_places():
        found = _weights_in(folder)
        if found is not None:
            return found
    looked = [f"  ${ENV_WEIGHTS}: not set"]
    looked += [f"  {what}: {folder} ({AUTHORS_FILENAME} or *.safetensors)"
               for what, folder in search_places()]
    raise WeightsNotFoundError("no DeepRemaster weights found. Looked in:\n"
                               + "\n".join(looked) + "\n" + how_to_get())


def load_weights(path=None, device="cpu", expected_md5: str | None = None):
    """(NetworkR, NetworkC) from `find_weights(path)`: the search, then `load_checkpoint`."""
    return load_checkpoint(find_weights(path), device=device, expected_md5=expected_md5)


def how_to_get() -> str:
    """How to obtain the authors' weights (URL, MD5, the fetch command)."""
    return (f"Get the authors' weights with `python -m vsremaster fetch` (saves "
            f"{user_data_dir() / AUTHORS_FILENAME}), or download {AUTHORS_URL} "
            f"(MD5 {AUTHORS_MD5}, CC BY-NC-SA 4.0) yourself and put it there or point "
            f"${ENV_WEIGHTS} at it.")


def fetch(url: str | None = None, md5: str | None = None, dest=None,
          progress: bool = True) -> Path:
    """Download `url` to `dest`, resuming `dest.part`, verify `md5`, rename into place.

    Defaults: $VSREMASTER_FETCH_URL / $VSREMASTER_FETCH_MD5, else the authors' release,
    saved as `user_data_dir() / AUTHORS_FILENAME`. An existing `dest` with the right MD5
    is kept. On an MD5 mismatch the partial file is deleted and FetchError raised; a
    network failure keeps it for the next run to resume. `dest` itself is only ever
    written by an atomic rename.
    """
    url = url or os.environ.get(ENV_FETCH_URL) or AUTHORS_URL
    md5 = (md5 or os.environ.get(ENV_FETCH_MD5) or AUTHORS_MD5).strip().lower()
    dest = Path(dest) if dest is not None else user_data_dir() / AUTHORS_FILENAME
    if dest.is_file() and md5sum(dest) == md5:
        _say(progress, f"{dest} is already present (MD5 ok)")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    resumed = _download(url, part, progress)
    got = md5sum(part)
    if got != md5 and resumed:
        # A stale .part (an older download, another file) spoils a resume: retry whole.
        _say(progress, "MD5 mismatch after resuming; downloading the whole file again")
        part.unlink()
        _download(url, part, progress)
        got = md5sum(part)
    if got != md5:
        part.unlink()
        raise FetchError(f"MD5 mismatch for {url}: expected {md5}, got {got}; the download "
                         "was deleted (run again, or check the URL)")
    os.replace(part, dest)
    _say(progress, f"saved {dest} (MD5 ok)")
    return dest


def _download(url: str, part: Path, progress: bool) -> bool:
    """Fill `part` from `url`; True when it kept bytes from an earlier run."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "vsremaster"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            start = _resume_offset(response, offset)
            if start is None:
                if not offset:
                    raise FetchError(f"download of {url} failed: the server sent a "
                                     "partial response that was not asked for")
                part.unlink()
                return _download(url, part, progress)
            _say(progress and start > 0, f"resuming {url} at byte {start}")
            _stream(response, part, start, progress)
            return start > 0
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # Nothing left to send: the .part is complete (or longer than the file); the
            # MD5 check decides, and fetch retries the whole file when it fails.
            return True
        raise FetchError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        size = part.stat().st_size if part.exists() else 0
        raise FetchError(f"download of {url} failed after {size} bytes ({e}); run again "
                         "to resume") from None


def _resume_offset(response, offset: int) -> int | None:
    """Where the body goes in the .part: `offset`, 0 (start over), None (ask again)."""
    # A server that ignores Range answers 200 with the whole file: start over.
    if response.status != 206:
        return 0
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    # A range other than the one asked for cannot be placed; ask for the whole file.
    return offset if match and int(match.group(1)) == offset else None


def _stream(response, part: Path, start: int, progress: bool) -> None:
    length = response.headers.get("Content-Length")
    total = start + int(length) if length and length.isdigit() else None
    from tqdm import tqdm
    with open(part, "r+b" if start else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            disable=not progress, file=sys.stderr, desc=part.name) as bar:
        f.seek(start)
        f.truncate()
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            f.write(chunk)
            bar.update(len(chunk))
        f.flush()
        os.fsync(f.fileno())
        # http.client's read(n) ends quietly when the peer hangs up early.
        if total is not None and f.tell() < total:
            raise ConnectionError(f"connection closed at byte {f.tell()} of {total}")


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr)
