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
