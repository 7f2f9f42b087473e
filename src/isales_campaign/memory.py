"""The garbage collector of a long-running server process."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Leave what start-up made (modules, message descriptors, compiled statements: about
    95,000 objects on the gRPC server) out of every later collection. Under load, calls
    promote enough objects for a full collection every second or two, and each went through
    all of them: 15 us of CPU per call on the gRPC server at concurrency 32, 4 us once
    frozen. Collect first, so that no garbage of start-up stays frozen."""
    gc.collect()
    gc.freeze()
