"""Collect malformed-input reports (file:line: what) without stopping a long conversion."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

log = logging.getLogger("dejavu_ros.datasets.robotcar")


class ProblemLog:
    """Counts problems per file and keeps the first ``keep`` messages for the summary."""

    def __init__(self, keep: int = 20):
        self.keep = keep
        self.messages: list[str] = []
        self.per_file: Counter[str] = Counter()

    def add(self, path: str | Path, line: int | None, what: str) -> None:
        name = str(path)
        self.per_file[name] += 1
        text = f"{name}:{line}: {what}" if line is not None else f"{name}: {what}"
        if len(self.messages) < self.keep:
            self.messages.append(text)
            log.info("%s (skipped)", text)

    @property
    def total(self) -> int:
        return sum(self.per_file.values())

    def lines(self) -> list[str]:
        out = [f"  {m}" for m in self.messages]
        if self.total > len(self.messages):
            out.append(f"  ... {self.total - len(self.messages)} more "
                       f"({', '.join(f'{f}: {n}' for f, n in self.per_file.items())})")
        return out
