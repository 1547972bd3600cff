"""Simulation: cocotb benches of the generated Verilog (verify.py) and Amaranth-simulator
stream helpers for unit benches of the RTL components (amaranth_streams.py)."""
