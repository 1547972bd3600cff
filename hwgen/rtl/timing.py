"""Cycle-level timing model of an accelerator: the handshakes of every unit, without data.

Each building block's control (counters, valid registers, ready logic) is transcribed from its
elaborate() into a small token model here; each op's lowering (hwgen.lowering) composes the
models of its unit; a chain of models is stepped cycle by cycle with the bench's driving
(input beats offered back to back, output always ready). This gives the report's latency (one
inference alone) and II (back-to-back inferences, steady state) including the effects the
per-stage cycle counts miss: line-buffer fill, the window writer waiting for the reader, replay
phases blocking their producers, ODE steps overlapping through the state buffer.

A model offers:
  valid()          output valid this cycle (from its state only: every unit registers valid)
  ready(out_ready) input ready this cycle, given the downstream ready
  tick(in_valid, out_ready)  advance one clock edge
Models must stay in step with the RTL units: tests compare the model with cocotb measurements.
"""
from __future__ import annotations

from dataclasses import dataclass


class _OutputStage:
    """A unit's output register (`ov`) and, with `skid`, the skid register behind it whose
    emptiness is the unit's enable (rtl.util.unit_enable / skid_output); without it the enable is
    `~ov | o.ready`."""

    def _init_output(self, skid: bool) -> None:
        self.ov = False
        self.skid, self.full = skid, False

    def valid(self):
        return self.ov or self.full

    def _en(self, o_r):
        return not self.full if self.skid else (not self.ov or o_r)

    def _tick_skid(self, o_r) -> None:
        """The skid register parks the output word the consumer does not take (before `ov` moves)."""
        if self.skid:
            self.full = not o_r and (self.full or self.ov)


class MatVecModel(_OutputStage):
    """MatVecUnit's schedule (and KernelBankConvUnit's stage 2): NF output groups x SF steps,
    stream beats taken while nf == 0; stages v1 -> `extra` pipeline levels -> v2 -> output register
    (with `credits`, Pipeline.stall_free: a pipeline that always advances into a FIFO of credits + 1
    words, each step taken while a credit is available)."""

    def __init__(self, nf: int, sf: int, extra: int = 0, credits: int = 0):
        self.NF, self.SF = nf, sf
        self.nf = self.sf = 0
        self.pipe = [(False, False)] * (2 + extra)  # (valid, last) of v1, the extra levels, v2
        self._init_output(skid=False)
        self.credits, self.held = credits, 0
        self.fifo = FifoModel(credits + 1) if credits else None

    def valid(self):
        return self.fifo.valid() if self.fifo else super().valid()

    def _en(self, o_r):
        return self.held < self.credits if self.fifo else super()._en(o_r)

    def ready(self, o_r):
        return self._en(o_r) and self.nf == 0

    def tick(self, iv, o_r):
        en = self._en(o_r)
        take = self.nf == 0
        fire0 = en and (not take or iv)
        if self.fifo:
            release = self.fifo.valid() and o_r
            self.held += int(fire0 and self.sf == self.SF - 1) - int(release)
            self.fifo.tick(self.ov, o_r)
        else:
            self._tick_skid(o_r)
        if en or self.fifo:
            v_last, l_last = self.pipe[-1]
            self.ov = v_last and l_last
            self.pipe = [(fire0, self.sf == self.SF - 1)] + self.pipe[:-1]
        if fire0:
            if self.sf == self.SF - 1:
                self.sf = 0
                self.nf = 0 if self.nf == self.NF - 1 else self.nf + 1
            else:
                self.sf += 1


class ThresholdModel(_OutputStage):
    """ThresholdUnit (and RequantUnit): accept -> `extra` pipeline levels -> output register (-> a
    skid register, `skid`: rtl.util.unit_enable, the enable is `skid empty`), one global enable."""

    def __init__(self, extra: int = 0, skid: bool = False):
        self.pipe = [False] * (1 + extra)
        self._init_output(skid)

    def ready(self, o_r):
        return self._en(o_r)

    def tick(self, iv, o_r):
        en = self._en(o_r)
        self._tick_skid(o_r)
        if en:
            self.ov = self.pipe[-1]
            self.pipe = [iv] + self.pipe[:-1]


class WidthConverterModel:
    def __init__(self, n_in: int, n_out: int, mid: int, registered_ready: bool = False):
        self.kg, self.ks = mid // n_in, mid // n_out
        self.registered_ready = registered_ready
        self.cnt = 0
        self.gv = self.full = False
        self.idx = 0

    def _split_ready(self, o_r):
        if self.ks > 1:
            return (not self.full) or (o_r and self.idx == self.ks - 1 and not self.registered_ready)
        return o_r

    def valid(self):
        return self.full if self.ks > 1 else self.gv

    def ready(self, o_r):
        sr = self._split_ready(o_r)
        if self.kg > 1:
            return self.cnt != self.kg - 1 or not self.gv or sr
        return sr

    def tick(self, iv, o_r):
        sr = self._split_ready(o_r)
        if self.kg > 1:
            fire_in = iv and (self.cnt != self.kg - 1 or not self.gv or sr)
            split_in = self.gv
            gv = self.gv
            if self.gv and sr:
                gv = False
            if fire_in:
                if self.cnt == self.kg - 1:
                    gv, self.cnt = True, 0
                else:
                    self.cnt += 1
            self.gv = gv
        else:
            split_in = iv
        if self.ks > 1:
            full, idx = self.full, self.idx
            if self.full and o_r:
                idx = self.idx + 1
                if self.idx == self.ks - 1:
                    idx, full = 0, False
            if split_in and sr:
                full, idx = True, 0
            self.full, self.idx = full, idx


class FifoModel:
    """amaranth.lib.fifo.SyncFIFOBuffered (depth >= 2): an inner FIFO of depth-1 plus the output register."""

    def __init__(self, depth: int):
        assert depth >= 2
        self.inner = depth - 1
        self.il = 0
        self.rr = False

    def valid(self):
        return self.rr

    def ready(self, o_r):
        return self.il != self.inner

    def tick(self, iv, o_r):
        w = iv and self.il != self.inner
        rd = self.il != 0 and (not self.rr or o_r)
        self.il += int(w) - int(rd)
        if rd:
            self.rr = True
        elif o_r:
            self.rr = False


class SkidModel:
    """SkidBuffer: an output register and a skid register; input ready is `not skid valid`."""

    def __init__(self):
        self.ov = self.sv = False

    def valid(self):
        return self.ov

    def ready(self, o_r):
        return not self.sv

    def tick(self, iv, o_r):
        if o_r or not self.ov:
            if self.sv:
                self.ov, self.sv = True, False
            else:
                self.ov = iv
        elif iv and not self.sv:
            self.sv = True


class WindowModel(_OutputStage):
    """SlidingWindowUnit: the writer (line buffer ring) and the reader (patch generator), then the
    read port (and, registered_read, the output register after it and a skid register behind that,
    whose emptiness is the enable)."""

    def __init__(self, swg):
        s = swg
        self.H, self.W, self.CF, self.R = s.H, s.W, s.CF, s.R
        self.kh, self.kw, self.sh, self.sw, self.pt, self.pl = s.kh, s.kw, s.sh, s.sw, s.pt, s.pl
        self.Ho, self.Wo = s.Ho, s.Wo
        self.WCF = self.W * self.CF
        self.HWCF = self.H * self.WCF
        self.D = self.R * self.WCF
        self.wpos = self.wgen = self.rgen = 0
        self.oh = self.ow = self.ki = self.j = 0
        self.r0, self.c0 = -self.pt, -self.pl * self.CF
        self.rv = False  # the read port's data valid (registered_read: one register before ov)
        self.registered_read = s.registered_read
        self._init_output(skid=s.registered_read)
        self.cw = True  # the writer's registered permission

    def _diff(self):
        return (self.wgen - self.rgen) & 3

    def _may_write(self, wpos, wgen):
        d = (wgen - self.rgen) & 3
        free = max(self.r0, 0) * self.WCF + self.D
        return d == 3 or (d == 0 and wpos < free) or (d == 1 and wpos + self.HWCF < free)

    def _can_read(self):
        r, c = self.r0 + self.ki, self.c0 + self.j
        real = 0 <= r < self.H and 0 <= c < self.WCF
        d = self._diff()
        return (not real) or d == 1 or (d == 0 and self.wpos > r * self.WCF + c)

    def ready(self, o_r):
        return self.cw

    def tick(self, iv, o_r):
        en = self._en(o_r)
        self._tick_skid(o_r)
        fire = en and self._can_read()
        wfire = iv and self.cw
        if wfire:  # the permission for the writer's next word, against the reader's state now
            wrap = self.wpos == self.HWCF - 1
            self.cw = self._may_write(0 if wrap else self.wpos + 1, (self.wgen + wrap) & 3)
        else:
            self.cw = self._may_write(self.wpos, self.wgen)
        if en:
            if self.registered_read:
                self.ov, self.rv = self.rv, fire
            else:
                self.ov = fire
        if fire:
            if self.j != self.kw * self.CF - 1:
                self.j += 1
            else:
                self.j = 0
                if self.ki != self.kh - 1:
                    self.ki += 1
                else:
                    self.ki = 0
                    if self.ow != self.Wo - 1:
                        self.ow += 1
                        self.c0 += self.sw * self.CF
                    else:
                        self.ow, self.c0 = 0, -self.pl * self.CF
                        if self.oh != self.Ho - 1:
                            self.oh += 1
                            self.r0 += self.sh
                        else:
                            self.oh, self.r0 = 0, -self.pt
                            self.rgen = (self.rgen + 1) & 3
        if wfire:
            if self.wpos == self.HWCF - 1:
                self.wpos, self.wgen = 0, (self.wgen + 1) & 3
            else:
                self.wpos += 1


class ReduceModel:
    """The tap / pixel counting reducers: MaxPoolUnit's running max, KernelBankConvUnit's stage 1
    (`groups` beats per step, `steps` steps, an output on the last step), GlobalSumPoolUnit."""

    def __init__(self, steps: int, groups: int):
        self.T, self.CF = steps, groups
        self.cf = self.t = 0
        self.ov = False

    def valid(self):
        return self.ov

    def ready(self, o_r):
        return self.t != self.T - 1 or not self.ov or o_r

    def tick(self, iv, o_r):
        fire = iv and self.ready(o_r)
        if o_r:
            self.ov = False
        if fire:
            if self.t == self.T - 1:
                self.ov = True
            if self.cf == self.CF - 1:
                self.cf = 0
                self.t = 0 if self.t == self.T - 1 else self.t + 1
            else:
                self.cf += 1


class ChainModel:
    def __init__(self, models: list):
        self.models = models

    def valid(self):
        return self.models[-1].valid()

    def _readies(self, o_r):
        rs = [False] * len(self.models)
        r = o_r
        for k in range(len(self.models) - 1, -1, -1):
            r = rs[k] = self.models[k].ready(r)
        return rs

    def ready(self, o_r):
        return self._readies(o_r)[0]

    def tick(self, iv, o_r):
        ms = self.models
        valids = [m.valid() for m in ms]
        rs = self._readies(o_r)
        n = len(ms)
        for k in range(n):
            ms[k].tick(iv if k == 0 else valids[k - 1], o_r if k == n - 1 else rs[k + 1])


class ODEModel:
    """ODEBlockUnit: state buffer with writer W, readers R1 (into f / out) and R2 (into the Add)."""

    def __init__(self, unit, inner: list):
        self.N, self.P = unit.steps, unit.P
        self.M = 2 * (self.N + 1)
        self.chain = ChainModel(inner)
        self.aov = False
        self.wpos = self.wver = self.r1pos = self.r1ver = self.r2pos = self.r2ver = 0
        self.v1 = self.to_out = self.v2 = False

    def _load(self):
        return self.wver == 0 or self.wver == self.N + 1

    def _w_ok(self):
        d1 = (self.wver - self.r1ver) % self.M
        return not (d1 == 1 and self.r1pos <= self.wpos)

    def valid(self):
        return self.v1 and self.to_out

    def ready(self, o_r):
        return self._load() and self._w_ok()

    def tick(self, iv, o_r):
        N, P, M = self.N, self.P, self.M
        d1 = (self.wver - self.r1ver) % M
        d2 = (self.wver - self.r2ver) % M
        r1_ok = d1 == 1 or (d1 == 0 and self.wpos > self.r1pos)
        r2_ok = d2 == 1 or (d2 == 0 and self.wpos > self.r2pos)
        w_ok = self._w_ok()
        load = self._load()
        add_o_ready = (not load) and w_ok
        chain_valid = self.chain.valid()
        go = self.v2 and chain_valid and (not self.aov or add_o_ready)
        chain_in_ready = self.chain.ready(go)
        en1 = (not self.v1) or (o_r if self.to_out else chain_in_ready)
        fire1 = en1 and r1_ok
        en2 = (not self.v2) or go
        fire2 = en2 and r2_ok
        wfire = (iv if load else self.aov) and w_ok
        out_pass = self.r1ver == N or self.r1ver == M - 1
        chain_iv = self.v1 and not self.to_out

        self.chain.tick(chain_iv, go)
        if add_o_ready:
            self.aov = False
        if go:
            self.aov = True
        if wfire:
            if self.wpos == P - 1:
                self.wpos, self.wver = 0, (0 if self.wver == M - 1 else self.wver + 1)
            else:
                self.wpos += 1
        if en1:
            self.v1, self.to_out = fire1, out_pass
        if fire1:
            if self.r1pos == P - 1:
                self.r1pos, self.r1ver = 0, (0 if self.r1ver == M - 1 else self.r1ver + 1)
            else:
                self.r1pos += 1
        if en2:
            self.v2 = fire2
        if fire2:
            if self.r2pos == P - 1:
                self.r2pos = 0
                if self.r2ver == N - 1:
                    self.r2ver = N + 1
                elif self.r2ver == M - 2:
                    self.r2ver = 0
                else:
                    self.r2ver += 1
            else:
                self.r2pos += 1


class ResidualModel:
    """ResidualBlock: fork into the skip path (its units, if any, then the skip FIFO) and the body
    chain, joined by a ResidualAddUnit."""

    def __init__(self, skip_depth: int, body: list, skip: list = ()):
        self.skip = ChainModel([*skip, FifoModel(skip_depth)]) if skip else FifoModel(skip_depth)
        self.body = ChainModel(body)
        self.aov = False

    def _go(self, o_r):
        return self.skip.valid() and self.body.valid() and (not self.aov or o_r)

    def valid(self):
        return self.aov

    def ready(self, o_r):
        go = self._go(o_r)
        return self.skip.ready(go) and self.body.ready(go)

    def tick(self, iv, o_r):
        go = self._go(o_r)
        body_ready, skip_ready = self.body.ready(go), self.skip.ready(go)
        self.skip.tick(iv and body_ready, go)
        self.body.tick(iv and skip_ready, go)
        if o_r:
            self.aov = False
        if go:
            self.aov = True


def window_models(swg) -> list:
    """A sliding window unit's model ([] when it is the identity: 1x1, stride 1, no padding)."""
    return [] if swg.identity else [WindowModel(swg)]


def models_of(unit) -> list:
    """The token models of one unit (a composite unit gives its inner chain; wires give none):
    each unit's lowering (hwgen.lowering) owns its model."""
    from ..lowering import lowering_of_unit

    return lowering_of_unit(unit).timing_models(unit)


_Chain = ChainModel  # the name the lockstep tests and older benches use


@dataclass
class Run:
    first_in: int | None  # cycle the first input beat moved
    done: list[int]  # cycle the last output beat of each inference moved
    finished: bool

    @property
    def latency(self) -> int | None:
        if not self.done or self.first_in is None:
            return None
        return self.done[0] - self.first_in + 1


def run(stages, in_beats: int, out_beats: int, inferences: int, *, max_cycles: int) -> Run:
    """Offer `inferences` x `in_beats` input beats back to back, take every output beat at once."""
    chain = ChainModel([m for st in stages for m in models_of(st.unit)])
    total_in, total_out = in_beats * inferences, out_beats * inferences
    sent = got = 0
    first_in = None
    done = []
    cycle = 0
    while got < total_out and cycle < max_cycles:
        iv = sent < total_in
        if not chain.models:
            in_fire = out_fire = iv
        else:
            in_fire = iv and chain.ready(True)
            out_fire = chain.valid()
            chain.tick(iv, True)
        if in_fire:
            if first_in is None:
                first_in = cycle
            sent += 1
        if out_fire:
            got += 1
            if got % out_beats == 0:
                done.append(cycle)
        cycle += 1
    return Run(first_in, done, got == total_out)


def simulate_latency(stages, in_beats: int, out_beats: int, bound: int) -> int | None:
    r = run(stages, in_beats, out_beats, 1, max_cycles=20 * (bound + in_beats + out_beats) + 10000)
    return r.latency if r.finished else None


def simulate_ii(stages, in_beats: int, out_beats: int, bound: int, *, inferences: int = 6,
                budget: int = 400_000) -> float | None:
    """Steady-state cycles between inferences (None when the run would exceed `budget` cycles)."""
    if inferences * (bound + in_beats + out_beats) > budget:
        return None
    r = run(stages, in_beats, out_beats, inferences, max_cycles=4 * inferences * (bound + in_beats + out_beats) + 10000)
    if not r.finished or len(r.done) < 3:
        return None
    half = len(r.done) // 2
    return (r.done[-1] - r.done[half - 1]) / (len(r.done) - half)
