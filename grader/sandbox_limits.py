"""The resource limits every submission's process runs under (applied in the child itself)."""

from __future__ import annotations

import resource


def apply_child_limits(memory_mb: int) -> None:
    if memory_mb > 0:
        size = memory_mb * 1024 * 1024
        # RLIMIT_DATA caps heap and anonymous mappings without counting torch's large
        # virtual reservations the way RLIMIT_AS would.
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
