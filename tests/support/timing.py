"""Time bounds that a busy machine still meets.

A test that must show something happens "promptly" (a cancel within a second, a timeout that is not a
hang) states the bound it would meet on an idle machine and passes it through `scaled`, which stretches
it by how much slower than an idle machine of this kind this one is right now: the best of a few runs of
a fixed piece of Python work, against that work's time on an idle 2-core machine. Figures for speed belong
in benchmarks/, not here: these bounds only tell a prompt answer from a hang.
"""

import time
from functools import lru_cache

# The reference work's best time on an idle machine of the project's kind (2 cores, Python 3.11).
IDLE_REFERENCE_S = 0.010
# Never tighter than stated, and at most this much looser: past it the machine is too loaded to tell.
MAX_FACTOR = 8.0


def _reference_work() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(200_000):
        total += i % 7
    assert total
    return time.perf_counter() - started


@lru_cache(maxsize=1)
def slowness() -> float:
    """How many times slower than idle this machine runs Python now (1.0 at best)."""
    best = min(_reference_work() for _ in range(5))
    return min(MAX_FACTOR, max(1.0, best / IDLE_REFERENCE_S))


def scaled(seconds: float) -> float:
    """`seconds`, the bound on an idle machine, stretched for the load this machine is under now."""
    return seconds * slowness()
