"""What every saved benchmark result carries: the device, the versions, the command and the date."""

from __future__ import annotations

import datetime as dt
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {cpu_name()}"


def result_header(benchmark: str, device: torch.device) -> dict[str, Any]:
    """`benchmark`, `device`, `versions`, `command` (as run) and `date` (UTC) of a result file."""
    return {
        "benchmark": benchmark,
        "device": device_name(device),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()},
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
