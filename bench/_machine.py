"""Machine facts the bench scripts print beside their figures (benchmarks name the CPU).

The same model name ("AMD EPYC") covers CPUs with and without AVX-512 and native bf16, which
change both fp32 kernels and bf16 speed (29x slower than fp32 without native bf16), so the
name carries the widest vector extensions the CPU reports.
"""
from __future__ import annotations

import platform
from pathlib import Path


def vector_isa(flags: set[str]) -> str:
    """'AVX-512 + BF16', 'AVX-512', 'AVX2' or 'no AVX2' from /proc/cpuinfo flags."""
    if "avx512f" in flags:
        return "AVX-512 + BF16" if "avx512_bf16" in flags or "amx_bf16" in flags else "AVX-512"
    return "AVX2" if "avx2" in flags else "no AVX2"


def cpu_name() -> str:
    """The CPU's model name and vector extensions (/proc/cpuinfo on Linux, else platform.processor())."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        name, flags = platform.processor(), set()
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if flags and name:
                break
        return f"{name}, {vector_isa(flags)}"
    return platform.processor()
