"""Timing of a callable: the median of timed iterations after warm-up.

On CUDA every iteration is bracketed by CUDA events after a `torch.cuda.synchronize()`, and the
end event is waited for, so the time is the GPU's and no queued kernel leaks into the next
iteration. On CPU the wall clock (`time.perf_counter`, or an injected `clock`) is used.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def time_fn(fn: Callable[[], object], iters: int, warmup: int, device: torch.device | str = "cpu",
            clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of one call of `fn` over `iters` timed calls after `warmup` untimed ones."""
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    for _ in range(max(0, warmup)):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    times: list[float] = []
    for _ in range(iters):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            t0 = clock()
            fn()
            times.append(clock() - t0)
    return float(statistics.median(times))
