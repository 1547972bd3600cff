"""The IR graph: ops in topological order plus the type and shape of every tensor."""
from __future__ import annotations

from dataclasses import dataclass, field

from .ops import Head, Op, Tail
from .types import DataType


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]  # per sample, no batch
    dtype: DataType | None  # None = float32 (only around Head and Tail)

    @property
    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class Graph:
    name: str
    ops: list[Op]
    tensors: dict[str, TensorInfo]
    input: str
    output: str
    source: str = ""  # the ONNX file it came from
    notes: list[str] = field(default_factory=list)  # what the frontend and passes decided

    @property
    def head(self) -> Head:
        assert isinstance(self.ops[0], Head)
        return self.ops[0]

    @property
    def tail(self) -> Tail | None:
        return self.ops[-1] if isinstance(self.ops[-1], Tail) else None

    @property
    def core(self) -> list[Op]:
        """The ops that become hardware: everything between Head and Tail."""
        return [op for op in self.ops if not isinstance(op, (Head, Tail))]

    def producer(self, tensor: str) -> Op | None:
        return next((op for op in self.ops if tensor in op.outputs), None)

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def replace(self, old: Op, new: list[Op]) -> None:
        i = self.ops.index(old)
        self.ops[i : i + 1] = new

    def validate(self) -> None:
        """Topological order and every tensor typed: cheap, run after every pass."""
        known = {self.input}
        for op in self.ops:
            for t in op.inputs:
                if t not in known:
                    raise AssertionError(f"{op.name}: input {t} used before it is produced")
            known.update(op.outputs)
        missing = known - self.tensors.keys()
        if missing:
            raise AssertionError(f"untyped tensors: {sorted(missing)}")
        if self.output not in known:
            raise AssertionError(f"graph output {self.output} is never produced")
