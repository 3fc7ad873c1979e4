"""The machine a benchmark ran on, in words, for every results file.

XLA compiles different code for different instruction sets, and the fastest
strategy (and a peer's speed) differs between CPUs, so a number without the CPU
it was measured on cannot be compared with anything. Every results file names
the CPU model as ``lscpu`` prints it, with the vendor, family/model numbers
(a hypervisor may hide the marketing name, e.g. "AMD EPYC") and the widest
vector extensions, e.g.::

    AMD EPYC (AuthenticAMD family 25 model 1; AVX2, no AVX-512), 2 cores
"""

from __future__ import annotations

import os
import platform


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (empty off Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # end of the first processor's block
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """``model name`` with vendor, family, model and vector extensions."""
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or platform.machine()
    flags = set(info.get("flags", "").split())
    isa = ["AVX-512" if "avx512f" in flags else "no AVX-512"]
    if "avx2" in flags:
        isa.insert(0, "AVX2")
    if "amx_tile" in flags:
        isa.append("AMX")
    ident = " ".join(
        f"{k} {info[f]}"
        for k, f in (("", "vendor_id"), ("family", "cpu family"), ("model", "model"))
        if f in info
    ).strip()
    detail = "; ".join(x for x in (ident, ", ".join(isa)) if x)
    return f"{name} ({detail})" if info else name


def describe(cores: int | None = None) -> str:
    """One line for a results file: the CPU model and the cores used."""
    n = os.cpu_count() if cores is None else cores
    return f"{cpu_model()}, {n} core{'s' if n != 1 else ''}"


if __name__ == "__main__":
    print(describe())
