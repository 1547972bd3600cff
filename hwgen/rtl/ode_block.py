"""dsODENet block unit: one instance of the step body, run `steps` times on a state kept on chip.

    h <- Add(h, f(h)) = clamp(round((h << a_shift) + (f(h) << b_shift), out_shift)),  N times

with f = the body's chain (e.g. depthwise ConvUnit -> ThresholdUnit -> pointwise ConvUnit ->
ThresholdUnit) and the Add a ResidualAddUnit. Streams: `i` carries the input feature map h0 and `o`
the final h, both NHWC in beats of SIMD state elements (state_type wire bits, raster order,
channels innermost; element e of a beat at bits [e*b, (e+1)*b)).

State buffer: one `Memory` of H*W*C/SIMD words (SIMD elements each), updated in place, with one
write port and two read ports:
  R1 streams h into f (and, after the last step, to `o`),
  R2 streams h into the Add's `a` input, in step with f's output (`b`),
  W  writes the input stream (load) or the Add's output (steps) back at the same address.
Every word passes through versions: load writes version 0, step s reads version s-1 and writes
version s, the output pass reads version N; then the next image's load writes its version 0.
The passes overlap (write-behind): a reader may read version v at position q once the writer has
written q of version v (or is already on version v+1); the load writer may overwrite q once R1 has
read version N there. Within a step, W writes q only after the Add consumed it, which needs f(q),
which needs R1 to have read q (every shape-preserving window contains its own centre), so the
in-place update never clobbers a word f or the Add still needs. Versions count modulo 2*(N+1) so
that "same", "one ahead" and "next image" stay distinct for every N >= 1.

Cycles per image (steady state) ~ N * step_cycles + H*W*C/SIMD (the load, which overlaps the
previous image's output pass), step_cycles = the slowest body stage. `latency` estimates one
image alone.
"""
from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..ir import Add, Conv
from .residual_add import ResidualAddUnit


class ODEBlockUnit(wiring.Component):
    def __init__(self, *, op, simd: int | None = None, clock=None):
        body = list(op.body)
        if not body or not isinstance(body[-1], Add):
            raise ValueError(f"{op.name}: the body must end with the residual Add")
        self.op, self.steps = op, int(op.steps)
        if self.steps < 1:
            raise ValueError(f"{op.name}: {op.steps} steps")
        add_op, chain_ops = body[-1], body[:-1]
        if add_op.inputs[0] != op.body_input:
            raise ValueError(f"{op.name}: the Add's first input must be the block input h")
        first = chain_ops[0] if chain_ops else None
        if not isinstance(first, Conv):
            raise ValueError(f"{op.name}: the body must start with a Conv (it gives the feature map shape)")
        self.H, self.W, self.C = first.in_shape
        state = op.state_type or add_op.out_type
        self.state_type = state
        self.sbits = state.wire_bits
        if first.in_type.wire_bits != self.sbits or add_op.a_type.wire_bits != self.sbits:
            raise ValueError(f"{op.name}: h is {first.in_type} into f, {add_op.a_type} into the Add and "
                             f"{state} out; one buffer needs one width")
        self.simd = math.gcd(first.simd, self.C) if simd is None else int(simd)
        if self.simd < 1 or self.C % self.simd:
            raise ValueError(f"SIMD {simd} does not divide {self.C} channels")

        # the body chain, planned like a top-level chain (hwgen.passes.schedule: each op's lowering,
        # width converters where beat sizes differ)
        from ..passes.schedule import plan_chain
        from ..plan import ClockTarget, StreamFormat

        chain = plan_chain(chain_ops, StreamFormat.of(state, self.H * self.W * self.C, self.simd),
                           clock=clock or ClockTarget())
        for st in chain.stages:
            shape = getattr(st.unit, "out_shape", None)
            if st.op is not None and shape is not None and tuple(shape[:2]) != (self.H, self.W):
                raise ValueError(f"{st.op.name}: the ODE body must keep the {self.H}x{self.W} feature map")
        if chain.fmt.element_bits != add_op.b_type.wire_bits:
            raise ValueError(f"{op.name}: f(h) is {chain.fmt.element_bits} bits wide, the Add takes {add_op.b_type}")
        fmt = chain.fmt
        chain.feed(add_op.name, StreamFormat(fmt.element_bits, fmt.signed, fmt.bipolar, fmt.elements, self.simd))
        chain.close()
        self.stages: list[tuple[str, wiring.Component]] = [(st.name, st.unit) for st in chain.stages]
        self.stage_cycles = {st.name: st.cycles for st in chain.stages}
        self.add = ResidualAddUnit.from_op(add_op, elems=self.simd)
        if add_op.out_type.wire_bits != self.sbits:
            raise ValueError(f"{op.name}: the Add's output {add_op.out_type} is not the state {state}")
        self.P = self.H * self.W * (self.C // self.simd)
        super().__init__({
            "i": In(stream.Signature(self.simd * self.sbits)),
            "o": Out(stream.Signature(self.simd * self.sbits)),
        })

    @classmethod
    def from_op(cls, op, *, simd: int | None = None, clock=None):
        """`clock` (hwgen.plan.ClockTarget): what the body's units are pipelined for."""
        return cls(op=op, simd=simd, clock=clock)

    # -- facts for the report -------------------------------------------------------------
    @property
    def pixels(self) -> int:
        return self.H * self.W

    @property
    def step_cycles(self) -> int:
        return max([self.P] + list(self.stage_cycles.values()))

    @property
    def cycles(self) -> int:
        """Per image in steady state: N steps plus the load (overlapping the previous output pass)."""
        return self.steps * self.step_cycles + self.P

    @property
    def body_latency(self) -> int:
        lat = 2 + self.add.latency  # read port + R2 register + add
        for _, u in self.stages:
            lat += getattr(u, "latency", 1)
        return lat

    @property
    def latency(self) -> int:
        """One image alone, no stalls: load, N steps, each step's pipeline, the output pass."""
        return self.P + self.steps * (self.step_cycles + self.body_latency) + self.P

    @property
    def buffer_bits(self) -> int:
        """The state buffer plus every body unit's buffers."""
        return self.P * self.simd * self.sbits + sum(getattr(u, "buffer_bits", 0) for _, u in self.stages)

    @property
    def rom_bits(self) -> int:
        return sum(getattr(u, "rom_bits", 0) for _, u in self.stages)

    # -- structure ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        N, P = self.steps, self.P
        M = 2 * (N + 1)  # version counter modulus
        word = self.simd * self.sbits

        prev = None
        for k, (name, unit) in enumerate(self.stages):
            m.submodules[f"f{k}_{name}"] = unit
            if prev is not None:
                wiring.connect(m, prev.o, unit.i)
            prev = unit
        m.submodules.add = add = self.add
        wiring.connect(m, prev.o, add.b)
        chain_in = self.stages[0][1].i

        m.submodules.state = state = Memory(shape=word, depth=P, init=[])
        wr = state.write_port()
        rd1 = state.read_port(domain="sync")
        rd2 = state.read_port(domain="sync")

        wpos, r1pos, r2pos = (Signal(range(max(P, 2)), name=n) for n in ("wpos", "r1pos", "r2pos"))
        wver, r1ver, r2ver = (Signal(range(M), name=n) for n in ("wver", "r1ver", "r2ver"))

        def diff(a, b, name):
            d = Signal(range(M), name=name)
            t = Signal(signed(M.bit_length() + 1), name=f"{name}_raw")
            m.d.comb += [t.eq(a - b), d.eq(Mux(t < 0, t + M, t))]
            return d

        d1 = diff(wver, r1ver, "d_w_r1")
        d2 = diff(wver, r2ver, "d_w_r2")
        r1_ok = (d1 == 1) | ((d1 == 0) & (wpos > r1pos))
        r2_ok = (d2 == 1) | ((d2 == 0) & (wpos > r2pos))
        w_ok = ~((d1 == 1) & (r1pos <= wpos))

        # -- writer: load (version 0) or the Add's output (versions 1..N) -----------------
        load = (wver == 0) | (wver == N + 1)
        wfire = Signal()
        m.d.comb += [
            self.i.ready.eq(load & w_ok),
            add.o.ready.eq(~load & w_ok),
            wfire.eq(Mux(load, self.i.valid, add.o.valid) & w_ok),
            wr.addr.eq(wpos), wr.data.eq(Mux(load, self.i.payload, add.o.payload)), wr.en.eq(wfire),
        ]
        with m.If(wfire):
            m.d.sync += wpos.eq(Mux(wpos == P - 1, 0, wpos + 1))
            with m.If(wpos == P - 1):
                m.d.sync += wver.eq(Mux(wver == M - 1, 0, wver + 1))

        # -- R1: h into f; version N goes to the output ------------------------------------
        v1, to_out = Signal(), Signal()
        en1, fire1 = Signal(), Signal()
        out_pass = (r1ver == N) | (r1ver == M - 1)
        m.d.comb += [
            en1.eq(~v1 | Mux(to_out, self.o.ready, chain_in.ready)),
            fire1.eq(en1 & r1_ok),
            rd1.addr.eq(r1pos), rd1.en.eq(en1),
            self.o.valid.eq(v1 & to_out), self.o.payload.eq(rd1.data),
            chain_in.valid.eq(v1 & ~to_out), chain_in.payload.eq(rd1.data),
        ]
        with m.If(en1):
            m.d.sync += [v1.eq(fire1), to_out.eq(out_pass)]
        with m.If(fire1):
            m.d.sync += r1pos.eq(Mux(r1pos == P - 1, 0, r1pos + 1))
            with m.If(r1pos == P - 1):
                m.d.sync += r1ver.eq(Mux(r1ver == M - 1, 0, r1ver + 1))

        # -- R2: h into the Add's a input (versions 0..N-1) --------------------------------
        v2, en2, fire2 = Signal(), Signal(), Signal()
        m.d.comb += [
            en2.eq(~v2 | add.a.ready),
            fire2.eq(en2 & r2_ok),
            rd2.addr.eq(r2pos), rd2.en.eq(en2),
            add.a.valid.eq(v2), add.a.payload.eq(rd2.data),
        ]
        with m.If(en2):
            m.d.sync += v2.eq(fire2)
        with m.If(fire2):
            m.d.sync += r2pos.eq(Mux(r2pos == P - 1, 0, r2pos + 1))
            with m.If(r2pos == P - 1):  # skip version N (read by R1 only)
                with m.If(r2ver == N - 1):
                    m.d.sync += r2ver.eq(N + 1)
                with m.Elif(r2ver == M - 2):
                    m.d.sync += r2ver.eq(0)
                with m.Else():
                    m.d.sync += r2ver.eq(r2ver + 1)
        return m
