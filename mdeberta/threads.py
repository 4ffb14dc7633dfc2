"""How many intra-op threads torch uses in a process: chosen, not left to torch's default.

    threads = apply_threads(cfg.threads, hidden_size=model_width, workers=cfg.num_workers)

torch's default is one thread per physical core for every process, whatever else runs. The rule
when a setting is 0 (auto), in order:

1. OMP_NUM_THREADS in the environment is taken as given (torchrun sets it to 1 for several
   processes per node; a user may set it).
2. A model narrower than SMALL_WIDTH gets 1 thread: its matrix products are too small to split,
   and threads spend more waiting on each other than computing. The demo's hidden-32 model trained
   5-7x slower with torch's default than with 1 thread on a shared 2-core machine (issue 16).
3. Otherwise the cores this process may run on (its CPU affinity) are shared: divided among the
   local processes (LOCAL_WORLD_SIZE, set by torchrun), less one for each DataLoader worker, which
   runs beside the main thread; at least 1.

A setting > 0 is used as given.
"""

from __future__ import annotations

import os

import torch

SMALL_WIDTH = 256
"""Hidden sizes below this train on one intra-op thread (the rule's step 2)."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity: taskset, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose_threads(
    setting: int, *, hidden_size: int, workers: int = 0, environ: dict | None = None
) -> int:
    """Intra-op threads for one process (the module docstring's rule)."""
    if setting > 0:
        return setting
    environ = os.environ if environ is None else environ
    given = environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    if hidden_size < SMALL_WIDTH:
        return 1
    processes = max(1, int(environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, available_cores() // processes - workers)


def apply_threads(setting: int, *, hidden_size: int, workers: int = 0) -> int:
    """Set torch's intra-op threads by choose_threads; return the number."""
    threads = choose_threads(setting, hidden_size=hidden_size, workers=workers)
    torch.set_num_threads(threads)
    return threads
