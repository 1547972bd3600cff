"""A bench's JSON results file: one row per key (a design, a model, a design and config), rewritten
after every finished row. Rows of a previous run stay until this run replaces them, so a run that
is stopped half way loses nothing (the benches used to drop every row they were about to rerun
when they started). Several runs of one bench may share the file (say one model per process on a
multi-core machine): every write takes a lock and merges into the rows on disk, so no run drops
the rows another run wrote meanwhile."""
from __future__ import annotations

import fcntl
import json
import os
from typing import Callable


class ResultsFile:
    def __init__(self, path: str, key: Callable[[dict], object], order: Callable[[dict], object] | None = None):
        self.path, self.key, self.order = path, key, order
        self.rows: list[dict] = self._load()

    def _load(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            return json.load(f)

    def get(self, key) -> dict | None:
        return next((r for r in self.rows if self.key(r) == key), None)

    def put(self, row: dict) -> None:
        """Replace the row with row's key (or add it) in the file as it is now, and rewrite it."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self.rows = self._load()  # another run may have written rows since we read it
            k = self.key(row)
            at = next((i for i, r in enumerate(self.rows) if self.key(r) == k), None)
            if at is None:
                self.rows.append(row)
            else:
                self.rows[at] = row
            if self.order is not None:
                self.rows.sort(key=self.order)
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.rows, f, indent=1)
                f.write("\n")
            os.replace(tmp, self.path)  # never a half-written file
