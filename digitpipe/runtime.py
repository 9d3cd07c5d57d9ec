"""Importing TensorFlow: quietly, and (for the pipeline's stages) with the numerics pinned.

TensorFlow's C++ runtime prints several lines to stderr on import and device discovery
(oneDNN notes, "could not find cuda drivers" on CPU machines) before any log-level setting
applies. They hide the stage's own output, so :func:`load_keras` silences stderr for just
that moment; Python errors raised by the import are still reported normally.

**The same bits on other x86-64 CPUs.** Trained weights depend on whether TensorFlow runs its oneDNN
kernels (it decides by the CPU: on for those with AVX-512 VNNI or BF16, off on the rest), on the instruction
set oneDNN's kernels use (AVX-512, AVX2, AVX and SSE4.1 kernels round differently) and on the number of
intra-op threads (TensorFlow's default is the number of cores; reductions split across threads add up in
another order); inter-op threads and ``OMP_NUM_THREADS`` change nothing. With ``pinned=True`` (the train,
evaluate and export stages) oneDNN's kernels run on every x86-64 CPU (``TF_ENABLE_ONEDNN_OPTS=1``, unless it
is already set), capped at :data:`PINNED_ISA`, and TensorFlow runs :data:`PINNED_THREADS` intra-op threads.
Measured (README, Reproducibility): the same bits on CPUs that TensorFlow would run oneDNN on and one it would
not, with other cache sizes, and nearly twice the speed of TensorFlow's own kernels at the same instruction
set. :func:`platform_facts` records all of these next to the results, so the reproduce check knows when to
expect equal bytes.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

# oneDNN's names for its instruction-set levels (values of ONEDNN_MAX_CPU_ISA), lowest first.
ISA_ORDER = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
             "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX",
             "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "ALL")
PINNED_ISA = "AVX2"   # the highest level every current x86-64 CPU has
PINNED_THREADS = 2    # intra-op threads: the same reduction order on 1 core or 64
PINNED_ONEDNN = "1"   # oneDNN's kernels on, where TensorFlow would leave some x86-64 CPUs without them
_pinned: bool | None = None  # how TensorFlow was set up in this process, once imported


_silencing = threading.Lock()
_silenced = {"depth": 0, "saved": -1}  # blocks open now, and the descriptor fd 2 was before the first


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration of the block.

    File descriptors belong to the process, not to a thread, and threads' blocks may overlap (the web server
    loads a new model while requests run the old one): the first block in points fd 2 away and the last one
    out points it back, so that it never stays at /dev/null, as it would if each block restored what it saw."""
    with _silencing:
        if _silenced["depth"] == 0:
            saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            _silenced["saved"] = saved
        _silenced["depth"] += 1
    try:
        yield
    finally:
        with _silencing:
            _silenced["depth"] -= 1
            if _silenced["depth"] == 0:
                os.dup2(_silenced["saved"], 2)
                os.close(_silenced["saved"])


def capped_isa(outside: str | None, cap: str = PINNED_ISA) -> str:
    """The lower of a ONEDNN_MAX_CPU_ISA value already set (unset or unknown: no cap) and ``cap``."""
    rank = {name: i for i, name in enumerate(ISA_ORDER)}
    return ISA_ORDER[min(rank.get((outside or "ALL").upper(), len(ISA_ORDER) - 1), rank[cap])]


def cpu_isa() -> str:
    """The highest of SSE41 / AVX / AVX2 / AVX512_CORE this CPU has (from /proc/cpuinfo), or "unknown"."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    for isa, needs in (("AVX512_CORE", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}), ("AVX2", {"avx2", "fma"}),
                       ("AVX", {"avx"}), ("SSE41", {"sse4_1"})):
        if needs <= set(flags):
            return isa
    return "unknown"


def cache_sizes() -> str:
    """L1 data and L2 cache sizes of CPU 0 (oneDNN sizes its blocks by them), e.g. "L1d 32K, L2 1024K"."""
    found = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if (level, kind) in (("1", "Data"), ("2", "Unified")):
            found.append(f"L{level}{'d' if level == '1' else ''} {size}")
    return ", ".join(found) or "unknown"


def load_keras(pinned: bool = False) -> ModuleType:
    """Import TensorFlow quietly, discover devices, and return ``keras``; with ``pinned``, first switch
    oneDNN's kernels on (on x86-64, where ``TF_ENABLE_ONEDNN_OPTS`` does not already say), cap oneDNN's
    instruction set and fix the thread count (see the module docstring). The first call in a process decides."""
    global _pinned
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _pinned is None and pinned:
        os.environ["ONEDNN_MAX_CPU_ISA"] = capped_isa(os.environ.get("ONEDNN_MAX_CPU_ISA"))
        if platform.machine().lower() in ("x86_64", "amd64"):  # elsewhere TensorFlow's own choice, recorded
            os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", PINNED_ONEDNN)
    with contextlib.nullcontext() if os.environ.get("DIGITPIPE_TF_VERBOSE") else stderr_silenced():
        import tensorflow as tf

        if _pinned is None and pinned:
            tf.config.threading.set_intra_op_parallelism_threads(PINNED_THREADS)
        tf.config.list_physical_devices()
    if _pinned is None:
        _pinned = pinned
    import keras

    return keras


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels, which round otherwise than its own (Eigen's): on or off by
    ``TF_ENABLE_ONEDNN_OPTS``, which the pinned stages set to 1 on x86-64 unless it is set already, and
    otherwise as TensorFlow decides for the CPU (on where it has AVX-512 VNNI or BF16)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def platform_facts() -> dict[str, str | int]:
    """What decides the bits of a trained model, as far as measured: whether oneDNN runs and the instruction set
    it uses, the thread count, the cache sizes, the GPUs TensorFlow sees, the machine and the library versions."""
    import keras
    import numpy as np
    import tensorflow as tf

    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL") if _pinned else "ALL"
    cpu = cpu_isa()
    in_use = cpu if cpu == "unknown" else capped_isa(capped, cpu)
    return {
        "machine": platform.machine(),
        "onednn": "on" if onednn_enabled() else "off",
        "onednn_isa": in_use,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0)),
        "cpu_caches": cache_sizes(),
        "gpus": len(tf.config.list_physical_devices("GPU")),  # where there is one, Keras trains on it
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
