"""engine.host: handing OpenMP workers and heap pages back between jobs."""
import json
import subprocess
import sys

import pytest

from vsremaster.engine import host

_SCRIPT = r"""
import json, os, threading, torch
from vsremaster.engine.host import release_openmp_threads

def tasks():
    return len(os.listdir("/proc/self/task"))

x = torch.arange(1 << 22, dtype=torch.float32)
out = {}

def job():
    torch.set_num_threads(3)
    out["before"] = tasks()
    y = x * 3 + 1                 # a parallel op: this thread's team of 3 starts
    out["during"] = tasks()
    release_openmp_threads()
    out["after"] = tasks()
    z = x * 3 + 1                 # the next parallel op starts workers again
    out["again"], out["same"] = tasks(), bool(torch.equal(y, z))

t = threading.Thread(target=job)
t.start()
t.join()
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only (/proc, libgomp)")
def test_release_ends_the_calling_threads_openmp_workers():
    if host.loaded_library("libgomp") is None:
        pytest.skip("torch uses another OpenMP runtime here (only libgomp's workers are ended)")
    got = json.loads(subprocess.run([sys.executable, "-c", _SCRIPT], check=True,
                                    capture_output=True, text=True).stdout)
    assert got["during"] == got["before"] + 2          # two workers beside the thread
    assert got["after"] == got["before"]               # ... ended
    assert got["again"] == got["during"] and got["same"]


def test_release_and_trim_leave_torch_working_on_this_thread():
    import torch
    x = torch.arange(1 << 20, dtype=torch.float32)
    host.release_openmp_threads()      # the main thread, maybe with no team yet
    y = x * 3 + 1
    host.release_openmp_threads()      # ... and now with one
    host.trim_host_heap()
    assert torch.equal(x * 3 + 1, y)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only (/proc)")
def test_loaded_library_prefers_a_folder_among_several():
    import os
    import torch
    torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    libc_dir = os.path.dirname(host.loaded_library("libc.so"))
    assert libc_dir != torch_lib
    # "lib" matches many loaded libraries, in both folders: each preference wins
    assert host.loaded_library("lib", prefer=torch_lib).startswith(torch_lib + os.sep)
    assert host.loaded_library("lib", prefer=libc_dir).startswith(libc_dir + os.sep)
    assert host.loaded_library("no-such-library-stem") is None
