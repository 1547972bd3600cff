# hwgen: one entry point for set-up, tests and the open FPGA flows.
PYTHON ?= python3
PIP    ?= $(PYTHON) -m pip
APT_PACKAGES = iverilog yosys nextpnr-ice40 fpga-icestorm chromium

.PHONY: setup test test-full demo bitstream

## setup: Debian packages (apt-get), then torch 2.13.0 (CPU build on disk), then hwgen and its extras.
setup:
	@if command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	else echo "apt-get not found: install $(APT_PACKAGES) by hand"; fi
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	$(PYTHON) -m hwgen.tools --check

## test: the default suite (fast; one real cocotb run per simulator, one real synthesis).
test:
	$(PYTHON) -m pytest -q -n 2 --durations=15

## test-full: everything, including the slow simulation and synthesis matrix.
test-full:
	$(PYTHON) -m pytest -q -n 2 -m ''

## demo: the shipped A2Q digits MLP -> Verilog -> Verilator check -> iCE40 place and route -> summary.
demo: flow-demo

bitstream: bitstream-ice40

include flows.mk
