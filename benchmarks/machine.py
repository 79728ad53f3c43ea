"""What every benchmark records about the machine, read off it rather than written by hand: the CPU model and
its matrix-unit flags from /proc/cpuinfo (platform.processor() is empty on Linux), cores, threads, torch.

    from machine import cpu_name   # benchmarks run as scripts, so this folder is on sys.path
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

MATRIX_FLAGS = ("avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni")  # what decides bf16/int8 speed on a CPU


@functools.cache
def cpu_name() -> str:
    """e.g. 'AMD EPYC (avx512_bf16, avx512_vnni; no AMX)' or 'Intel(R) Xeon(R) ... (amx_bf16, ...)'."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    present = [flag for flag in MATRIX_FLAGS if flag in flags]
    return f"{model} ({', '.join(present) or 'no bf16/int8 matrix flags'}{'' if 'amx_bf16' in flags else '; no AMX'})"


def reset_peak_rss() -> None:
    """Start a new peak-memory measurement for this process (Linux: `5` to /proc/self/clear_refs sets the high
    water mark to the current RSS), so variants run one after another in one process each get their own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak then covers the whole process so far


def peak_rss_mb() -> float | None:
    """This process's peak resident memory since it started or since `reset_peak_rss` (VmHWM), in MiB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return round(int(line.split()[1]) / 1024, 1) if line else None
