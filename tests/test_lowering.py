"""Every IR op kind has its one home: a lowering with golden semantics (and, for hardware ops, the
unit, plan and timing model), reachable only through the registry."""
from __future__ import annotations

import pytest

from hwgen.ir import ops
from hwgen.ir.serialize import REGISTRY
from hwgen.lowering import Lowering, lowering_of
from hwgen.lowering.base import _BY_OP, _BY_UNIT

OP_CLASSES = [c for c in vars(ops).values() if isinstance(c, type) and issubclass(c, ops.Op)
              and c.__module__ == ops.__name__ and c not in (ops.Op, ops.Dot)]
HOST_OPS = {ops.Head, ops.Tail, ops.FloatActivation}


@pytest.mark.parametrize("cls", OP_CLASSES, ids=lambda c: c.__name__)
def test_every_op_has_a_lowering_with_golden_semantics(cls):
    low = _BY_OP.get(cls)
    assert low is not None, f"{cls.__name__} has no lowering of its own"
    assert type(low).golden is not Lowering.golden, f"{cls.__name__}'s lowering has no golden semantics"
    assert cls.__name__ in REGISTRY  # and can be saved in a build directory
    if cls not in HOST_OPS:
        assert low.unit_types, f"{cls.__name__} has no RTL unit"
        assert type(low).timing_models is not Lowering.timing_models
        assert type(low).plan is not Lowering.plan or cls is ops.Add  # Add plans through plan_step
        for unit_type in low.unit_types:
            assert _BY_UNIT[unit_type] is low


def test_unknown_op_is_a_clear_error():
    from dataclasses import dataclass

    from hwgen.errors import HwgenError

    @dataclass
    class Mystery(ops.Op):
        pass

    with pytest.raises(HwgenError, match=r"node 'm' \(Mystery\): hwgen has no lowering for Mystery"):
        lowering_of(Mystery(name="m", inputs=["a"], outputs=["b"]))
