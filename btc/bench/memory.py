"""Peak memory of a measurement.

- CUDA: `torch.cuda.max_memory_allocated` after `torch.cuda.reset_peak_memory_stats`, i.e. the
  peak of tensors allocated by PyTorch on the device during the measured code (not the caching
  allocator's reserve, not the CUDA context).
- CPU: the peak resident set size of the whole *process* (`resource.getrusage(RUSAGE_SELF)
  .ru_maxrss`). It never decreases, so for the second model of a run it is the maximum over
  everything the process did so far (imports, earlier models included), not that model's own
  footprint. Run one model per process for a per-model figure.
"""

from __future__ import annotations

import sys

import torch


def reset_peak(device: torch.device) -> None:
    """Start a new peak window (CUDA only; the CPU process peak cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    """Peak memory in MB (10^6 bytes): CUDA allocated since `reset_peak`, or process peak RSS."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 1e6
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return rss / 1e6 if sys.platform == "darwin" else rss * 1024 / 1e6
