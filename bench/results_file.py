"""A bench's JSON results file: one row per key (a design, a model, a design and config), rewritten
after every finished row. Rows of a previous run stay until this run replaces them, so a run that
is stopped half way loses nothing (the benches used to drop every row they were about to rerun
when they started)."""
from __future__ import annotations

import json
import os
from typing import Callable


class ResultsFile:
    def __init__(self, path: str, key: Callable[[dict], object], order: Callable[[dict], object] | None = None):
        self.path, self.key, self.order = path, key, order
        self.rows: list[dict] = []
        if os.path.exists(path):
            with open(path) as f:
                self.rows = json.load(f)

    def get(self, key) -> dict | None:
        return next((r for r in self.rows if self.key(r) == key), None)

    def put(self, row: dict) -> None:
        """Replace the row with row's key (or add it) and rewrite the file."""
        k = self.key(row)
        at = next((i for i, r in enumerate(self.rows) if self.key(r) == k), None)
        if at is None:
            self.rows.append(row)
        else:
            self.rows[at] = row
        if self.order is not None:
            self.rows.sort(key=self.order)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.rows, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.path)  # never a half-written file
