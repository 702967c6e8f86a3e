"""What this CPU is, read from /proc/cpuinfo: the same kind of machine comes as different chips, and
training speed (bfloat16 above all) and the benchmarks' numbers depend on which."""
from __future__ import annotations

import os
from pathlib import Path

BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo(cpuinfo: str | None) -> str:
    if cpuinfo is not None:
        return cpuinfo
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _first_field(cpuinfo: str, name: str) -> str | None:
    for line in cpuinfo.splitlines():
        if line.startswith(name) and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name; `cpuinfo` is /proc/cpuinfo's text (read if not given)."""
    return _first_field(_cpuinfo(cpuinfo), "model name") or "unknown"


def machine_facts(load_before: float) -> dict:
    """What a benchmark's result names its machine by: the CPU, its cores, and the 1-minute load
    average when the run began and now (a busy machine's figures are upper bounds)."""
    return {"cpu_model": cpu_model(), "cpus": os.cpu_count(),
            "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    return set((_first_field(_cpuinfo(cpuinfo), "flags") or "").split())


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has bfloat16 instructions (AVX512-BF16 or AMX). Without them TensorFlow
    emulates bfloat16, and a training step is slower than in float32 (measured on an AVX2-only
    AMD EPYC: 1.60 against 1.37 s per step). Having them is not enough: on a Xeon with AVX512-BF16
    and no AMX a bfloat16 step took 1.4 to 1.5 times the float32 one, on a Xeon with AMX 0.88 of it
    (benchmarks/training_step.py)."""
    return any(flag in cpu_flags(cpuinfo) for flag in BFLOAT16_CPU_FLAGS)
