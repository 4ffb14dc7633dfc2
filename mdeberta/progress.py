"""Progress for a person at a terminal and for a log file.

    bar = progress(total=300, desc="train", unit="step")
    bar.update(); bar.set_postfix(mlm="5.301"); bar.write("step 100: ..."); bar.close()
    for batch in progress(range(0, n, 64), desc="de", unit="batch", leave=False): ...

On a terminal (standard error is a TTY): a tqdm bar. Elsewhere (a log file, CI, a pipe): plain
lines, one every LINE_SECONDS at most and one when a kept bar closes, never a carriage return,
so a log holds a few readable lines instead of hundreds of overwritten bar states.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

LINE_SECONDS = 30.0


def progress(iterable: Iterable | None = None, *, interactive: bool | None = None, **options):
    """A tqdm bar on a terminal, else a LineProgress (`interactive` overrides the check);
    options: total, desc, unit, initial, leave, as tqdm takes them."""
    if interactive is None:
        interactive = sys.stderr.isatty()
    if interactive:
        from tqdm import tqdm

        return tqdm(iterable, dynamic_ncols=True, **options)
    return LineProgress(iterable, **options)


class LineProgress:
    """tqdm's update / set_postfix / write / close, printed as periodic lines on stderr."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        leave: bool = True,
        seconds: float = LINE_SECONDS,
        clock=time.monotonic,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = self.start = initial
        self.leave, self.seconds, self.clock = leave, seconds, clock
        self.postfix: dict[str, Any] = {}
        self.started = self.last = clock()
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable or ():
                yield item
                self.update()
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.clock() - self.last >= self.seconds:
            self._print()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def write(self, text: str) -> None:
        print(text)  # where tqdm.write prints: standard output

    def close(self) -> None:
        if not self.closed and self.leave:
            self._print()
        self.closed = True

    def line(self) -> str:
        """`train: 120/300 steps (40%), 2.1 steps/s, mlm=5.301`"""
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        if self.total:
            done += f" {self.unit}s ({100 * self.n / self.total:.0f}%)"
        else:
            done += f" {self.unit}s"
        elapsed = self.clock() - self.started
        rate = (self.n - self.start) / elapsed if elapsed > 0 else 0.0
        parts = [done, f"{rate:.3g} {self.unit}s/s", *(f"{k}={v}" for k, v in self.postfix.items())]
        return f"{self.desc}: " * bool(self.desc) + ", ".join(parts)

    def _print(self) -> None:
        self.last = self.clock()
        print(self.line(), file=sys.stderr, flush=True)
