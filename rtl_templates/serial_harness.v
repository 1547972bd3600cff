// hwgen small-I/O harness: serial shift registers around the core's two streams, so that
// place and route sees a handful of pins whatever the payload widths are, and the resource
// and timing figures measure the core (plus W_IN + W_OUT flip-flops of shift register).
//
// Parameters W_IN / W_OUT are the core's i__payload / o__payload widths; the core's module
// name is the macro HWGEN_CORE (yosys: read_verilog -DHWGEN_CORE=name; iverilog: -DHWGEN_CORE=name).
//
// Protocol (all inputs are registered once, so pins never sit on a core path):
//   input:  drive sdi and pulse sdi_shift once per bit, LSB of the beat first (W_IN pulses);
//           then pulse sdi_push: the register becomes a beat on the core's input stream and
//           sdi_busy stays high until the core has taken it (do not shift or push meanwhile).
//   output: sdo_valid goes high when a beat from the core sits in the output register;
//           sdo shows its bit 0; each sdo_shift pulse moves the next bit onto sdo (LSB first);
//           sdo_pop releases the register for the next beat (the core is stalled until then).
`ifndef HWGEN_CORE
`define HWGEN_CORE hwgen_top
`endif

module hwgen_serial_harness #(
    parameter integer W_IN = 8,
    parameter integer W_OUT = 8
) (
    input  wire clk,
    input  wire rst,
    input  wire sdi,
    input  wire sdi_shift,
    input  wire sdi_push,
    output wire sdi_busy,
    output wire sdo,
    input  wire sdo_shift,
    input  wire sdo_pop,
    output wire sdo_valid
);
    reg rst_q = 1'b1, sdi_q = 1'b0, sdi_push_q = 1'b0;
    reg sdo_shift_q = 1'b0, sdo_pop_q = 1'b0;
    always @(posedge clk) begin
        rst_q <= rst;
        sdi_q <= sdi;
        sdi_push_q <= sdi_push;
        sdo_shift_q <= sdo_shift;
        sdo_pop_q <= sdo_pop;
    end

    // input side: shift register -> i__payload
    reg in_valid = 1'b0;
    wire in_ready;
    always @(posedge clk) begin
        if (rst_q) begin
            in_valid <= 1'b0;
        end else begin
            if (in_valid && in_ready)
                in_valid <= 1'b0;
            else if (sdi_push_q)
                in_valid <= 1'b1;
        end
    end
    // the data register's clock enable is the registered shift pin alone (the protocol forbids
    // shifting while busy): with the reset and the busy flag in it, that enable's LUT and its net
    // to all W_IN flip-flops were a 10.8 ns path (digits A2Q at II 64, ECP5). Alone it still fanned
    // out to every bit (TFC_2W2A at II 64: the registered pin -> 10-11 ns -> 1,568 clock enables), so each
    // IN_SLICE-bit slice of the register has its own registered copy of the pin, written in toggle
    // form (copy <= copy ^ (pin ^ copy)) so that yosys does not merge copies with the same input.
    localparam integer IN_SLICE = 256;
    localparam integer IN_SLICES = (W_IN + IN_SLICE - 1) / IN_SLICE;
    reg [IN_SLICES-1:0] sdi_shift_copy = {IN_SLICES{1'b0}};
    always @(posedge clk)
        sdi_shift_copy <= sdi_shift_copy ^ ({IN_SLICES{sdi_shift}} ^ sdi_shift_copy);
    wire [W_IN:0] in_chain;  // bit i + 1 shifts into bit i; the pin's bit enters at the top
    assign in_chain[W_IN] = sdi_q;
    genvar s;
    generate
        for (s = 0; s < IN_SLICES; s = s + 1) begin : in_slice
            localparam integer LO = s * IN_SLICE;
            localparam integer HI = (LO + IN_SLICE < W_IN) ? LO + IN_SLICE : W_IN;
            reg [HI-LO-1:0] bits = {(HI-LO){1'b0}};
            always @(posedge clk)
                if (sdi_shift_copy[s])
                    bits <= in_chain[HI:LO+1];
            assign in_chain[HI-1:LO] = bits;
        end
    endgenerate
    wire [W_IN-1:0] in_sr = in_chain[W_IN-1:0];
    assign sdi_busy = in_valid;

    // output side: o__payload -> shift register
    wire [W_OUT-1:0] core_out;
    wire core_out_valid;
    reg [W_OUT-1:0] out_sr = {W_OUT{1'b0}};
    reg out_full = 1'b0;
    always @(posedge clk) begin
        if (rst_q) begin
            out_full <= 1'b0;
        end else if (!out_full) begin
            if (core_out_valid) begin
                out_sr <= core_out;
                out_full <= 1'b1;
            end
        end else begin
            if (sdo_pop_q)
                out_full <= 1'b0;
            else if (sdo_shift_q)
                out_sr <= (W_OUT > 1) ? {1'b0, out_sr[W_OUT-1:1]} : 1'b0;
        end
    end
    assign sdo = out_sr[0];
    assign sdo_valid = out_full;

    // The registered reset reaches every control flip-flop of the core. On ECP5 it rides a
    // primary clock network (DCCA), as nextpnr-ice40 promotes high-fan-out resets on its own:
    // in general routing it was a 12.6 ns net (digits A2Q at II 64). yosys: -DHWGEN_ECP5_GLOBAL_RESET
    // and the ECP5 cell library (read_verilog -lib +/ecp5/cells_bb.v).
    wire rst_core;
`ifdef HWGEN_ECP5_GLOBAL_RESET
    DCCA rst_global (.CLKI(rst_q), .CE(1'b1), .CLKO(rst_core));
`else
    assign rst_core = rst_q;
`endif
    `HWGEN_CORE core (
        .clk(clk),
        .rst(rst_core),
        .i__payload(in_sr),
        .i__valid(in_valid),
        .i__ready(in_ready),
        .o__payload(core_out),
        .o__valid(core_out_valid),
        .o__ready(!out_full)
    );
endmodule
