"""What a script editor does to the filter: re-evaluate the script, seek at random, repeat.

Evaluates `samples/remaster.vpy` (the project's sample film and references) N times in
this one process the way VapourSynth Editor / vspreview do on every edit: clear the
outputs, run the script, take output 0, request a few frames in random order, drop
it. Reports, per evaluation, the process RSS after dropping the clip, the time taken,
whether the networks were loaded again, and how many engines and models are alive;
then the RSS growth after a warm-up. Prints figures, then one JSON line.

    python benchmarks/editor_reload.py                     # 20 evaluations, full-size weights
    python benchmarks/editor_reload.py --keep-previous     # the old clip lives until the new one is built

With `--keep-previous` the previous evaluation's clip is dropped only after the next
one is built (as an editor holding the old preview would): the model is then shared,
not loaded again. Linux only (/proc/self/statm for RSS).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import runpy
import sys
import tempfile
import time
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "samples" / "remaster.vpy"


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--evaluations", type=int, default=20)
    p.add_argument("--seeks", type=int, default=3, help="random frames requested per evaluation")
    p.add_argument("--mindim", type=int, default=32)
    p.add_argument("--width", type=float, default=1.0, help="golden weights' channel width")
    p.add_argument("--warm-up", type=int, default=4)
    p.add_argument("--keep-previous", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="vsremaster-editor-") as tmp:
        os.environ["HOME"] = tmp                 # BestSource's index cache goes there
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import golden_state_dicts  # the golden generator in ../shared
        import vapoursynth as vs
        import vsremaster.remaster as remaster
        from vsremaster.engine import models as shared
        from vsremaster.model.checkpoint import save_checkpoint
        weights = save_checkpoint(Path(tmp) / "golden.safetensors",
                                  *golden_state_dicts(args.width), name="golden",
                                  width=str(args.width))
        engines: list[weakref.ref] = []
        loads: list[float] = []
        make_engine, load = remaster.Engine, shared.load_checkpoint

        def engine(*a, **k):
            e = make_engine(*a, **k)
            engines.append(weakref.ref(e))
            return e

        def timed_load(*a, **k):
            t = time.perf_counter()
            try:
                return load(*a, **k)
            finally:
                loads.append(time.perf_counter() - t)
        remaster.Engine, shared.load_checkpoint = engine, timed_load

        def models_alive() -> int:     # the loaded networks nothing has let go of yet
            return sum(isinstance(o, shared.Models) for o in gc.get_objects())

        rng = random.Random(args.seed)
        rows = []
        previous = None
        base = rss()
        for i in range(args.evaluations):
            t = time.perf_counter()
            loads_before = len(loads)
            vs.clear_outputs()
            runpy.run_path(str(SCRIPT), init_globals={"mindim": str(args.mindim),
                                                      "weights": str(weights)})
            clip = vs.get_output(0).clip
            built = time.perf_counter() - t
            for n in rng.sample(range(clip.num_frames), args.seeks):
                clip.get_frame(n)
            if not args.keep_previous:
                vs.clear_outputs()
                del clip
                clip = None
            previous = clip
            del clip
            gc.collect()
            alive_engines = sum(1 for e in engines if e() is not None)
            rows.append({"evaluation": i + 1, "seconds": round(time.perf_counter() - t, 2),
                         "build_s": round(built, 2), "loaded": len(loads) > loads_before,
                         "rss_mb": round(rss() / 2**20, 1), "engines_alive": alive_engines,
                         "models_alive": models_alive()})
            print(f"{i + 1:3d}: {rows[-1]['seconds']:6.2f} s (build {built:5.2f} s, model "
                  f"{'loaded' if rows[-1]['loaded'] else 'shared'}), RSS {rows[-1]['rss_mb']:7.1f} MB, "
                  f"engines alive {alive_engines}, models alive {rows[-1]['models_alive']}",
                  file=sys.stderr)
        vs.clear_outputs()
        del previous
        gc.collect()
        end_engines = sum(1 for e in engines if e() is not None)
        end_models = models_alive()
        remaster.Engine, shared.load_checkpoint = make_engine, load

    w = min(args.warm_up, args.evaluations - 1)
    after = [r["rss_mb"] for r in rows[w:]]
    growth = max(after) - rows[w - 1]["rss_mb"] if w else max(after) - base / 2**20
    print(f"{args.evaluations} evaluations of {SCRIPT.name} (mindim {args.mindim}, golden "
          f"weights width {args.width:g}, {args.seeks} random frames each"
          f"{', previous clip kept until the next is built' if args.keep_previous else ''})")
    print(f"RSS before: {base / 2**20:.1f} MB; after evaluation {w}: {rows[w - 1]['rss_mb']} MB; "
          f"max after: {max(after)} MB; growth after warm-up: {growth:.1f} MB")
    print(f"model loads: {len(loads)} ({sum(loads) / max(1, len(loads)):.2f} s each); "
          f"mean evaluation {sum(r['seconds'] for r in rows) / len(rows):.2f} s")
    print(f"after the last clip was dropped: {end_engines} engines and {end_models} models alive")
    print(json.dumps({
        "benchmark": "editor_reload", "evaluations": args.evaluations, "seeks": args.seeks,
        "mindim": args.mindim, "weights_width": args.width, "keep_previous": args.keep_previous,
        "rss_start_mb": round(base / 2**20, 1), "rss_after_warm_up_mb": rows[w - 1]["rss_mb"],
        "rss_max_after_warm_up_mb": max(after), "rss_growth_mb": round(growth, 1),
        "rss_mb": [r["rss_mb"] for r in rows], "model_loads": len(loads),
        "load_s": round(sum(loads) / max(1, len(loads)), 2),
        "mean_evaluation_s": round(sum(r["seconds"] for r in rows) / len(rows), 2),
        "engines_alive_at_end": end_engines, "models_alive_at_end": end_models}))


if __name__ == "__main__":
    main()
