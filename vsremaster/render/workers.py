"""Running segments: on local worker processes, or as tasks on a Ray cluster.

Local: one thread per worker slot takes the next segment and runs its vspipe (and
ffmpeg) processes. A slot on a CUDA machine sees only its own GPU, through
`CUDA_VISIBLE_DEVICES`, so a script's Remaster (device_index None or 0) uses that GPU
unchanged. A failed segment goes back to the front of the queue for any free slot;
after ATTEMPTS failures the render stops taking new segments, lets the running ones
finish (they are kept for a resume) and reports the segment.

Ray: one task per segment, one GPU each where the cluster has GPUs (Ray sets the
task's `CUDA_VISIBLE_DEVICES`), retried by Ray on errors and lost workers. A task writes
into the work folder when its node sees it (a shared file system; checked with a token
file), else renders to a local temporary file and returns the bytes.
"""
from __future__ import annotations

import collections
import functools
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from ..planning.scenes import last_line
from .media import RenderError, RenderFailed
from .segments import Job, render_segment

ATTEMPTS = 3
TOKEN_FILE = ".render-token"


class SegmentFailed(RenderFailed):
    """A segment failed ATTEMPTS times."""

    def __init__(self, job: Job, attempts: int, error: str):
        self.job, self.attempts, self.error = job, attempts, error
        super().__init__(f"render: segment {job.index} (frames {job.start}-{job.end - 1}) "
                         f"failed {attempts} times; the last error:\n{error.strip()}")


class Progress:
    """Frames done over the whole film: finished segments plus the running ones' counts."""

    def __init__(self, done: int):
        self._done, self._running = done, {}
        self._lock = threading.Lock()

    def running(self, index: int, frames: int) -> None:
        with self._lock:
            self._running[index] = frames

    def finished(self, index: int, frames: int) -> None:
        with self._lock:
            self._running.pop(index, None)
            self._done += frames

    def dropped(self, index: int) -> None:
        with self._lock:
            self._running.pop(index, None)

    def total(self) -> int:
        with self._lock:
            return self._done + sum(self._running.values())


def local_slots(workers: int | None) -> tuple[list[dict], str]:
    """Environment overrides of each local worker, and a description of them.

    Default: one worker per visible CUDA device, else one on the CPU. Worker i sees the
    i-th visible device (round robin when there are more workers than devices).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        ids = []                 # every GPU hidden: no need to ask CUDA (or import torch)
    else:
        import torch
        count = torch.cuda.device_count()
        ids = ([v.strip() for v in visible.split(",") if v.strip()] if visible is not None
               else [str(i) for i in range(count)])[:count]
    n = workers or max(1, len(ids))
    if not ids:
        return [{} for _ in range(n)], f"{n} local worker{'s' * (n > 1)} on the CPU"
    slots = [{"CUDA_VISIBLE_DEVICES": ids[i % len(ids)]} for i in range(n)]
    gpus = ", ".join(s["CUDA_VISIBLE_DEVICES"] for s in slots)
    return slots, f"{n} local worker{'s' * (n > 1)} on CUDA devices {gpus}"


class LocalPool:
    """Worker slots on this machine, each running one segment at a time."""

    def __init__(self, slots: list[dict], progress: Progress, on_done, log, tick):
        self.slots, self.progress, self.on_done, self.log, self.tick = \
            slots, progress, on_done, log, tick
        self.lock = threading.Lock()
        self.processes: dict[int, list] = {}
        self.failure: SegmentFailed | None = None
        self.stopping = False

    def run(self, jobs: list[Job]) -> None:
        self.queue = collections.deque(jobs)
        self.attempts = collections.Counter()
        threads = [threading.Thread(target=self._slot, args=(i, env), daemon=True)
                   for i, env in enumerate(self.slots)]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                time.sleep(0.25)
                self.tick()
        except BaseException:
            self.stop()
            for t in threads:
                t.join()
            raise
        if self.failure:
            raise self.failure

    def stop(self) -> None:
        """Stop every running process (the segments stay unfinished)."""
        with self.lock:
            self.stopping = True
            running = [p for ps in self.processes.values() for p in ps]
        for p in running:
            if p.poll() is None:
                p.terminate()

    def _track(self, slot: int, processes: list) -> None:
        with self.lock:
            self.processes[slot] = processes
            stopping = self.stopping
        if stopping:           # stop() ran while these were starting
            for p in processes:
                p.terminate()

    def _slot(self, slot: int, overrides: dict) -> None:
        env = {**os.environ, **overrides}
        while True:
            with self.lock:
                if self.failure or self.stopping or not self.queue:
                    return
                job = self.queue.popleft()
            try:
                result = render_segment(job, env,
                                        functools.partial(self.progress.running, job.index),
                                        functools.partial(self._track, slot))
            except Exception as e:       # SegmentError, or a process that could not start
                self.progress.dropped(job.index)
                with self.lock:
                    if self.stopping:
                        return
                    self.attempts[job.index] += 1
                    n = self.attempts[job.index]
                    if n >= ATTEMPTS:
                        self.failure = SegmentFailed(job, n, str(e) or repr(e))
                    else:
                        self.queue.appendleft(job)
                self.log(f"segment {job.index} (frames {job.start}-{job.end - 1}): attempt {n} "
                         f"failed: {last_line(e) or '(no message)'}")
                continue
            finally:
                self._track(slot, [])
            self.on_done(job, result)


# --------------------------------------------------------------------------- Ray

def import_ray():
    try:
        import ray
    except ImportError:
        raise RenderError("render: --cluster needs Ray, which is not installed: "
                          "pip install 'vsremaster[cluster]'") from None
    return ray


class _Frames:
    """A Ray actor holding each running task's frame count, for the progress bar."""

    def __init__(self):
        self.frames = {}

    def set(self, index: int, frames: int) -> None:
        self.frames[index] = frames

    def get(self) -> dict:
        return dict(self.frames)


def _ray_segment(job: Job, token: str, frames_actor) -> dict:
    """A Ray task: render `job`, into the work folder when this node sees it."""
    marker = Path(job.path).parent / TOKEN_FILE
    try:
        shared = marker.read_text() == token
    except OSError:
        shared = False
    last = [0.0]

    def report(n: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            frames_actor.set.remote(job.index, n)

    if shared:
        return render_segment(job, on_frames=report)
    with tempfile.TemporaryDirectory(prefix="vsremaster-segment-") as tmp:
        local = job.at(Path(tmp) / Path(job.path).name)
        result = render_segment(local, on_frames=report)
        result["data"] = Path(local.path).read_bytes()
        return result


def run_ray(jobs: list[Job], cluster: str, workers: int | None, work: Path,
            progress: Progress, on_done, log, tick) -> None:
    """Run `jobs` as Ray tasks; at most `workers` at once when given.

    cluster: "local" starts a private Ray instance on this machine (`workers` CPUs),
    "auto" joins the cluster this machine belongs to, anything else is its address.
    """
    ray = import_ray()
    import logging
    started = False
    if not ray.is_initialized():
        try:
            if cluster == "local":
                ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(address=cluster, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise RenderError(f"render: --cluster {cluster}: cannot start or join Ray: {e}") \
                from None
        started = True
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        log(f"Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs, {gpus:g} GPUs"
            + (f", at most {workers} segments at once" if workers else ""))
        token = uuid.uuid4().hex
        (work / TOKEN_FILE).write_text(token)
        frames_actor = ray.remote(num_cpus=0)(_Frames).remote()
        task = ray.remote(_ray_segment).options(
            num_gpus=1 if gpus else 0, num_cpus=1, max_retries=ATTEMPTS - 1,
            retry_exceptions=True)
        queue, pending = collections.deque(jobs), {}
        limit = workers or len(jobs)
        failure = None
        try:
            while queue or pending:
                while queue and len(pending) < limit and failure is None:
                    job = queue.popleft()
                    pending[task.remote(job, token, frames_actor)] = job
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                counts = ray.get(frames_actor.get.remote())
                for ref in ready:
                    job = pending.pop(ref)
                    progress.dropped(job.index)
                    try:
                        result = ray.get(ref)
                    except Exception as e:          # the task's error after its retries
                        cause = getattr(e, "cause", None) or e
                        failure = failure or SegmentFailed(job, ATTEMPTS, str(cause))
                        log(f"segment {job.index} (frames {job.start}-{job.end - 1}): failed "
                            f"{ATTEMPTS} times: {last_line(cause) or '(no message)'}")
                        continue
                    data = result.pop("data", None)
                    if data is not None:
                        _write_returned(Path(job.path), data)
                    on_done(job, result)
                for ref, job in pending.items():
                    progress.running(job.index, counts.get(job.index, 0))
                tick()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        if failure:
            raise failure
    finally:
        (work / TOKEN_FILE).unlink(missing_ok=True)
        if started:
            ray.shutdown()


def _write_returned(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)
