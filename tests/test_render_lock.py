"""`render` takes its work folder's lock (filelock) before it plans or renders anything."""
from __future__ import annotations

import subprocess
import sys

import pytest

from vsremaster.render import RenderError, render, work_folder

HOLD = """
import sys
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_render_into_the_same_work_folder_is_refused(tmp_path):
    script = tmp_path / "film.vpy"
    script.write_text("")                  # no output: planning it would fail otherwise
    output = tmp_path / "film.mkv"
    work = work_folder(output)
    work.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(work / ".lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RenderError, match="another render is using"):
            render(script, output, progress=False)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    # the lock went with its holder: now the render gets as far as the script
    with pytest.raises(RenderError) as info:
        render(script, output, progress=False)
    assert "another render" not in str(info.value)
