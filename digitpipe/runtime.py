"""Importing TensorFlow without its start-up chatter.

TensorFlow's C++ runtime prints several lines to stderr on import and device discovery
(oneDNN notes, "could not find cuda drivers" on CPU machines) before any log-level setting
applies. They hide the stage's own output, so :func:`load_keras` silences stderr for just
that moment; Python errors raised by the import are still reported normally.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration of the block."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


def load_keras() -> ModuleType:
    """Import TensorFlow quietly, discover devices, and return ``keras``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("DIGITPIPE_TF_VERBOSE"):
        import keras
        return keras
    with stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
    import keras

    return keras
