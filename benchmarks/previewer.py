"""Seek in a real previewer: vsview opens a script under Xvfb, jumps to frames, saves screenshots.

Opens a VapourSynth script (default `samples/remaster.vpy`) in vsview 0.14.0 on a
virtual X screen and seeks the way a user does: Ctrl+G (vsview's "Jump to Frame"),
type the frame number, Enter. Each seek is timed from the Enter key to the frame
being on screen (vsview has set the new image in its view and the window has been
repainted) and to its screenshot being saved. Screenshots are of the X screen itself
(what a user would see), one PNG per seek. Prints figures, then one JSON line.

    python3 benchmarks/previewer.py -a mindim=64                  # the sample, small and quick
    python3 benchmarks/previewer.py film.vpy --cut 134 -a mindim=320   # frames 104, 134, 164
    python3 benchmarks/previewer.py film.vpy --frames 100 250 251

The frames: `--frames A B C`, or `--cut N` (N = first frame of a new scene) for
N - spread, N, N + spread (`--spread`, default 30: past one chunk, so each seek is
cold); without either, the middle of the clip stands for N. Frame 0 is shown when the
script opens (timed as `open`), so seeks go elsewhere.
The JSON's `scenes` are the frames' `_RemasterScene` props (read after the timed
seeks) and `spans_cut` says whether the seeks crossed a scene change.

Environment: the previewer runs in its own venv (`--venv`, default `.venv-preview`
in the repository; gitignored), created on first use with this script's Python
(3.12, through `.python-version`) as
    python3 -m venv .venv-preview
    .venv-preview/bin/pip install -e . vsview==0.14.0
so nothing is installed into the project's `.venv`. System packages (Debian 12; as
root), for Xvfb and Qt's xcb platform plugin:
    apt-get install -y xvfb libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
        libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 \
        libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0 libx11-xcb1 libegl1 libgl1 \
        libgl1-mesa-dri libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core
Missing ones are reported (from `ldd` of Qt's xcb plugin) before anything starts.
Xvfb is started on a free display and stopped at the end; vsview runs with
`--no-settings`-like behaviour (nothing read from or written to ~/.config/vsview).

Colour props: vsview's default "Frame property policy" ("error") refuses frames whose
`_Matrix`/`_Transfer`/`_Primaries` are unspecified, and the filter passes its source's
`_Transfer`/`_Primaries` through (the sample's are unspecified). So this script sets
the policy to "warn" (`--props-policy`): such frames are shown as BT.709, which is what
the filter's colour conversion assumes, and the JSON says `missing_props`. With
"error" (what a user with default settings gets) the run stops at frame 0.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VSVIEW = "vsview==0.14.0"
SCREEN = (1280, 800)
WINDOW = (960, 600)

# Debian packages providing the shared libraries Qt's xcb plugin links to
DEBIAN = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1", "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1", "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("script", nargs="?", type=Path, default=ROOT / "samples" / "remaster.vpy")
    p.add_argument("-a", "--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="script argument, as vspipe -a (e.g. mindim=64)")
    p.add_argument("--frames", type=int, nargs="+", help="frames to seek to, in order")
    p.add_argument("--cut", type=int, help="first frame of a scene: seek to cut-spread, cut, cut+spread")
    p.add_argument("--spread", type=int, default=30)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "previewer", help="folder for the PNGs")
    p.add_argument("--venv", type=Path, default=ROOT / ".venv-preview")
    p.add_argument("--setup-only", action="store_true", help="create the venv, check the system, exit")
    p.add_argument("--props-policy", choices=("error", "warn", "ignore"), default="warn",
                   help="vsview's 'Frame property policy' for unspecified colour props (its default: error)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    for kv in args.arg:
        if "=" not in kv:
            p.error(f"--arg {kv!r}: expected KEY=VALUE")
    return args


# ---------------------------------------------------------------- outside the venv

def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path) -> None:
    """Create the previewer's venv (the project editable, plus vsview) unless it has both."""
    py = venv_python(venv)
    if py.exists() and subprocess.run(
            [py, "-c", "import vsview, vsremaster"], capture_output=True).returncode == 0:
        return
    if not py.exists():
        print(f"creating {venv} with {sys.executable}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    print(f"installing the project and {VSVIEW} into {venv}", file=sys.stderr)
    subprocess.run([py, "-m", "pip", "install", "-q", "-e", ROOT, VSVIEW], check=True)


def missing_system(venv: Path) -> list[str]:
    """Debian packages still needed: Xvfb, and whatever Qt's xcb plugin cannot load."""
    need = [] if shutil.which("Xvfb") else ["xvfb"]
    found = subprocess.run(
        [venv_python(venv), "-c", "import PySide6, pathlib; print(pathlib.Path(PySide6.__file__).parent)"],
        capture_output=True, text=True, check=True).stdout.strip()
    plugin = Path(found) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    ldd = subprocess.run(["ldd", plugin], capture_output=True, text=True).stdout
    for lib in re.findall(r"^\s*(\S+) => not found", ldd, re.M):
        need.append(DEBIAN.get(lib, lib))
    return sorted(set(need))


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Xvfb on a free display (it picks one and writes its number to a pipe)."""
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise SystemExit("Xvfb did not start")
    return proc, f":{number}"


def outside(args: argparse.Namespace, argv: list[str]) -> int:
    ensure_venv(args.venv)
    need = missing_system(args.venv)
    if need:
        print("missing system packages; as root: apt-get install -y " + " ".join(need), file=sys.stderr)
        return 2
    if args.setup_only:
        print(f"ready: {venv_python(args.venv)}", file=sys.stderr)
        return 0
    xvfb, display = start_xvfb()
    try:
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        inner = subprocess.Popen([venv_python(args.venv), __file__, "--inside", *argv], env=env)
        try:
            return inner.wait(timeout=args.timeout + 60)   # it stops itself at --timeout
        except subprocess.TimeoutExpired:
            inner.kill()
            print(f"the previewer did not stop within {args.timeout + 60} s", file=sys.stderr)
            return 3
    finally:
        xvfb.send_signal(signal.SIGTERM)
        xvfb.wait()


# ---------------------------------------------------------------- inside vsview

def inside(args: argparse.Namespace) -> int:
    # What vsview's command line sets before it builds its window (vsview/cli.py)
    os.environ["JETPYTOOLS_NO_COLOR"] = "true"
    os.environ["PYDANTIC_ERRORS_INCLUDE_URL"] = "false"
    os.environ.setdefault("QT_WIDGETS_RHI", "1")
    from importlib.metadata import version

    import vapoursynth as vs
    from PySide6.QtCore import QObject, Qt, QTimer, Slot
    from PySide6.QtTest import QTest
    from vsview.app.main import Application, MainWindow
    from vsview.app.plugins.manager import PluginManager
    from vsview.app.settings import SettingsManager
    from vsview.app.views.timeline import FrameEdit
    from vsview.logging import setup_logging

    setup_logging(level=None, vs_level=None, vsengine_level=None, qt_level=None,
                  log_file=None, is_gui_mode=False)
    app = Application([sys.argv[0]], no_settings=True)
    SettingsManager.global_settings.view.props_policy = args.props_policy
    # vsview reports a frame it failed to render or pack only in its log and a message box
    render_errors: list[str] = []
    missing_props: list[str] = []

    class Collect(logging.Handler):
        def __init__(self, into: list[str], level: int) -> None:
            super().__init__(level)
            self.into = into

        def emit(self, record: logging.LogRecord) -> None:
            self.into.append(record.getMessage())

    logging.getLogger("vsview.app.workspace.playback").addHandler(Collect(render_errors, logging.ERROR))
    logging.getLogger("vsview.app.packing").addHandler(Collect(missing_props, logging.WARNING))
    PluginManager.load()
    window = MainWindow()
    window.resize(*WINDOW)
    window.move(0, 0)
    window.show()
    window.activateWindow()
    if not QTest.qWaitForWindowActive(window, 10_000):
        raise SystemExit("the vsview window did not become active")
    args.out.mkdir(parents=True, exist_ok=True)
    script_args = dict(kv.split("=", 1) for kv in args.arg)

    def finish(code: int, message: str | None = None) -> None:
        if message:
            print(message, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # vsview's render thread may be waiting on a modal error box: leave at once
        os._exit(code)

    class Driver(QObject):
        """Lives in the GUI thread, so vsview's cross-thread signals reach it queued, in order."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict] = []
            self.target: int | None = None
            self.t_request = 0.0
            self.t_open = time.perf_counter()
            self.open_s = 0.0
            self.frames: list[int] = []

        def screenshot(self, name: str) -> Path:
            g = window.frameGeometry()
            path = args.out / name
            if not app.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height()).save(str(path)):
                finish(1, f"could not save {path}")
            return path

        @Slot(str)
        def loaded(self, message: str) -> None:
            if message != "Completed" or self.frames:
                return
            self.open_s = time.perf_counter() - self.t_open
            self.check("opening the script (frame 0)")
            clip = ws.outputs_manager.current_voutput.vs_output.clip
            self.clip = clip
            n = clip.num_frames
            if args.frames:
                frames = args.frames
            else:
                cut = n // 2 if args.cut is None else args.cut
                # frame 0 is on screen once the script is open: seeking there would do nothing
                frames = [min(max(f, 1), n - 1) for f in (cut - args.spread, cut, cut + args.spread)]
            bad = [f for f in frames if not 0 <= f < n]
            if bad:
                finish(2, f"frames {bad} outside the clip's 0..{n - 1}")
            if any(a == b for a, b in zip([0, *frames], frames)):
                finish(2, f"frames {frames}: each must differ from the one shown before it (0 at open)")
            self.frames = list(frames)
            print(f"vsview {version('vsview')}, {args.script} {script_args or ''}: "
                  f"{n} frames {clip.width}x{clip.height}", flush=True)
            print(f"open (script evaluated, frame 0 shown): {self.open_s:.2f} s", flush=True)
            QTimer.singleShot(0, self.seek_next)

        def seek_next(self) -> None:
            if len(self.rows) == len(self.frames):
                return self.report()
            n = self.frames[len(self.rows)]
            # Ctrl+G is vsview's "Jump to Frame": it focuses the frame box with its text selected
            QTest.keyClick(app.focusWidget() or window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
            box = app.focusWidget()
            if not isinstance(box, FrameEdit):
                finish(1, f"Ctrl+G focused {box!r}, not vsview's frame box")
            QTest.keyClicks(box, str(n))
            self.target = n
            self.t_request = time.perf_counter()
            QTest.keyClick(box, Qt.Key.Key_Return)

        def check(self, what: str) -> None:
            if render_errors:
                self.screenshot("failed.png")
                finish(1, f"vsview failed {what}: {render_errors[0]}\n(screenshot failed.png"
                          + ("; --props-policy warn shows unspecified _Transfer/_Primaries as BT.709)"
                             if "no path between colorspaces" in render_errors[0] else ")"))

        @Slot(int)
        def shown(self, n: int) -> None:
            if n != self.target:
                return
            window.repaint()          # paint the new image now, not at the next idle moment
            app.processEvents()
            t_shown = time.perf_counter() - self.t_request
            self.check(f"seeking to frame {n}")
            png = self.screenshot(f"seek{len(self.rows) + 1}_frame{n:06d}.png")
            t_saved = time.perf_counter() - self.t_request
            # the image vsview put in its view (untimed), to compare with the clip's frame
            ws.tab_manager.current_view.pixmap_item.pixmap().save(str(png.with_suffix(".view.png")))
            self.target = None
            self.rows.append({"frame": n, "shown_s": round(t_shown, 3), "saved_s": round(t_saved, 3),
                              "png": str(png)})
            print(f"seek {len(self.rows)}: frame {n:>6}  shown {t_shown:8.2f} s  saved {t_saved:8.2f} s"
                  f"  {png}", flush=True)
            QTimer.singleShot(0, self.seek_next)

        @Slot()
        def failed(self) -> None:
            self.screenshot("failed.png")
            finish(1, "vsview could not render the frame (see its log above; screenshot failed.png)")

        @Slot(str)
        def load_failed(self, message: str) -> None:
            self.screenshot("failed.png")
            finish(1, f"vsview could not load {args.script}: {message} (screenshot failed.png)")

        def report(self) -> None:
            # Scenes after the timed seeks: the frames are in the filter's caches by now
            with ws.playback._env.use():
                scenes = []
                for row in self.rows:
                    with self.clip.get_frame(row["frame"]) as f:
                        scenes.append(f.props.get("_RemasterScene"))
            for row, scene in zip(self.rows, scenes):
                row["scene"] = scene
            spans = len({s for s in scenes if s is not None}) > 1
            print(f"scenes {scenes}: {'across a scene cut' if spans else 'NOT across a scene cut'}")
            if missing_props:
                print(f"vsview ({args.props_policy}): {missing_props[0]}; shown as BT.709")
            with open("/proc/self/status") as f:
                hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024
            print(json.dumps({
                "previewer": "vsview", "version": version("vsview"), "vapoursynth": vs.__version__,
                "script": str(args.script), "args": script_args, "frames_total": self.clip.num_frames,
                "props_policy": args.props_policy, "missing_props": bool(missing_props),
                "open_s": round(self.open_s, 3), "seeks": self.rows, "spans_cut": spans,
                "peak_rss_mb": round(hwm, 1)}))
            finish(0)

    driver = Driver()
    button, _ = window.load_new_script(args.script.resolve(), **script_args)
    ws = button.workspace
    ws.statusLoadingFinished.connect(driver.loaded)
    ws.statusLoadingErrored.connect(driver.load_failed)
    ws.playback.timelineCursorChanged.connect(driver.shown)
    ws.playback.loadFailed.connect(driver.failed)
    QTimer.singleShot(int(args.timeout * 1000), lambda: finish(3, f"timed out after {args.timeout} s"))
    return app.exec()


def main() -> None:
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.inside:
        raise SystemExit(inside(args))
    raise SystemExit(outside(args, argv))


if __name__ == "__main__":
    main()
