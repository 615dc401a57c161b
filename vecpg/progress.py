"""A small text progress bar for long work (loading, index builds, benchmarks)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``with Progress("load", total=n) as p: p.update(k)`` draws a bar on stderr.

    On a terminal the bar redraws in place; elsewhere (CI logs) it prints a line at most
    every few seconds and at the end, so logs stay short.
    """

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 unit: str = "rows") -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self._last = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done; the bar redraws at most every 0.1 s on a terminal and
        every 5 s elsewhere, so calling this per row is cheap."""
        self.done += n
        self._draw()

    def set(self, done: int, total: int | None = None, note: str = "") -> None:
        """Set the absolute count (and the total once it is known), with a note such as the
        phase: for callbacks that report totals, like an index build's progress."""
        self.done = done
        if total is not None:
            self.total = total
        self._draw(note)

    def _draw(self, note: str = "", final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.1 if self.tty else 5.0):
            return
        self._last = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            text = (f"{self.label:<14} [{bar:<30}] {frac:6.1%} {self.done}/{self.total} "
                    f"{self.unit} {rate:,.0f}/s {elapsed:5.1f}s {note}")
        else:
            text = f"{self.label:<14} {self.done} {self.unit} {elapsed:5.1f}s {note}"
        if self.tty:
            self.stream.write("\r" + text.ljust(100))
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self, note: str = "") -> None:
        """Draw the last line however recently the bar was drawn; ``with`` calls it."""
        self._draw(note, final=True)
