"""The CPU math warm-up (engine.models.warm_cpu_math): same bits, run by the engine.

Its speed effect is measured by benchmarks/cpu_math_state.py, not here. Each check runs
in a fresh Python process: the state the warm-up changes is process-wide.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_warm_up_leaves_the_bits_of_the_ops_it_speeds_up():
    out = _run("""
        import torch, torch.nn.functional as F
        from vsremaster.engine.models import warm_cpu_math
        x = torch.randn(3, 64, 40, 56, generator=torch.Generator().manual_seed(1)) * 0.5
        ops = (F.elu, torch.expm1, torch.tanh, lambda t: torch.log1p(t.abs()))
        before = [op(x) for op in ops]
        warm_cpu_math()
        print(warm_cpu_math.cache_info().currsize, all(torch.equal(b, op(x)) for b, op in zip(before, ops)))
    """)
    assert out == "1 True"


def test_engine_warms_cpu_math_when_it_loads_networks_on_a_cpu(lite_weights):
    out = _run(f"""
        import torch
        from vsremaster.engine import models
        before = models.warm_cpu_math.cache_info().currsize
        models.shared_models({str(lite_weights)!r}, torch.device("cpu"), torch.float32)
        print(before, models.warm_cpu_math.cache_info().currsize)
    """)
    assert out == "0 1"
