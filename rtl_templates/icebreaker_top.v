// hwgen board top for the iCEBreaker (iCE40UP5K-SG48, 12 MHz oscillator, FTDI UART).
//
// The host talks to the accelerator over the FTDI serial port (8N1, BAUD, default 115200):
//   send:    every input beat as ceil(W_IN/8) bytes, least significant byte first
//            (payload bits [7:0] first; the unused top bits of the last byte are ignored);
//   receive: every output beat as ceil(W_OUT/8) bytes, least significant byte first
//            (the unused top bits of the last byte are 0).
// report.json ("io") says how elements are packed into a beat and how many beats make one
// inference. The UART cannot be stalled: a beat that arrives while the previous one still
// waits for the core is dropped and lights the red LED (send one inference, read its result,
// then send the next, and this never happens). The green LED blinks when a beat is sent back.
// BTN_N (the user button) resets the design; it also resets itself after configuration.
//
// Parameters W_IN / W_OUT are the core's payload widths; the core's module name is the macro
// HWGEN_CORE (yosys: read_verilog -DHWGEN_CORE=name). Pins: rtl_templates/icebreaker.pcf.
`ifndef HWGEN_CORE
`define HWGEN_CORE hwgen_top
`endif

module hwgen_icebreaker_top #(
    parameter integer W_IN = 8,
    parameter integer W_OUT = 8,
    parameter integer CLK_HZ = 12000000,
    parameter integer BAUD = 115200
) (
    input  wire CLK,
    input  wire RX,
    output wire TX,
    input  wire BTN_N,
    output wire LEDR_N,
    output wire LEDG_N
);
    localparam integer DIV = (CLK_HZ + BAUD / 2) / BAUD;  // clocks per bit: 104 at 12 MHz
    localparam integer NB_IN = (W_IN + 7) / 8;
    localparam integer NB_OUT = (W_OUT + 7) / 8;

    // ---- reset: 255 cycles after configuration, and while the button is pressed
    reg btn_q1 = 1'b1, btn_q2 = 1'b1;
    reg [7:0] por = 8'd0;
    always @(posedge CLK) begin
        btn_q1 <= BTN_N;
        btn_q2 <= btn_q1;
        if (!btn_q2)
            por <= 8'd0;
        else if (por != 8'hff)
            por <= por + 8'd1;
    end
    wire rst = (por != 8'hff);

    // ---- UART receiver (8N1, sampled mid-bit)
    reg rx_q1 = 1'b1, rx_q2 = 1'b1;
    reg [15:0] rx_cnt = 16'd0;
    reg [3:0] rx_bit = 4'd0;
    reg [7:0] rx_sh = 8'd0;
    reg rx_busy = 1'b0, rx_stb = 1'b0;
    always @(posedge CLK) begin
        rx_q1 <= RX;
        rx_q2 <= rx_q1;
        rx_stb <= 1'b0;
        if (rst) begin
            rx_busy <= 1'b0;
        end else if (!rx_busy) begin
            if (!rx_q2) begin                 // falling edge of a start bit
                rx_busy <= 1'b1;
                rx_cnt <= DIV / 2;
                rx_bit <= 4'd0;
            end
        end else if (rx_cnt != 16'd0) begin
            rx_cnt <= rx_cnt - 16'd1;
        end else begin
            rx_cnt <= DIV - 1;
            if (rx_bit == 4'd0) begin         // middle of the start bit
                if (rx_q2)
                    rx_busy <= 1'b0;          // a glitch, not a start bit
                else
                    rx_bit <= 4'd1;
            end else if (rx_bit <= 4'd8) begin
                rx_sh <= {rx_q2, rx_sh[7:1]};
                rx_bit <= rx_bit + 4'd1;
            end else begin                    // middle of the stop bit
                rx_busy <= 1'b0;
                rx_stb <= rx_q2;              // a framing error drops the byte
            end
        end
    end

    // ---- bytes -> input beat
    reg [8*NB_IN+7:0] in_buf = {(8*NB_IN+8){1'b0}};
    reg [15:0] in_cnt = 16'd0;
    reg in_full = 1'b0;
    reg [W_IN-1:0] beat = {W_IN{1'b0}};
    reg beat_valid = 1'b0;
    reg overflow = 1'b0;
    wire in_ready;
    always @(posedge CLK) begin
        in_full <= 1'b0;
        if (rst) begin
            in_cnt <= 16'd0;
            beat_valid <= 1'b0;
            overflow <= 1'b0;
        end else begin
            if (rx_stb) begin
                in_buf <= {rx_sh, in_buf[8*NB_IN+7:8]};
                if (in_cnt == NB_IN - 1) begin
                    in_cnt <= 16'd0;
                    in_full <= 1'b1;
                end else begin
                    in_cnt <= in_cnt + 16'd1;
                end
            end
            if (in_full) begin
                if (!beat_valid || in_ready) begin
                    beat <= in_buf[8 +: W_IN];
                    beat_valid <= 1'b1;
                end else begin
                    overflow <= 1'b1;
                end
            end else if (beat_valid && in_ready) begin
                beat_valid <= 1'b0;
            end
        end
    end

    // ---- output beat -> bytes -> UART transmitter
    wire [W_OUT-1:0] core_out;
    wire core_out_valid;
    reg [8*NB_OUT-1:0] out_buf = {(8*NB_OUT){1'b0}};
    reg [15:0] out_left = 16'd0;
    wire out_ready = (out_left == 16'd0);
    reg [9:0] tx_sh = 10'h3ff;
    reg [3:0] tx_bits = 4'd0;
    reg [15:0] tx_cnt = 16'd0;
    reg [19:0] blink = 20'd0;
    always @(posedge CLK) begin
        if (blink != 20'd0)
            blink <= blink - 20'd1;
        if (rst) begin
            out_left <= 16'd0;
            tx_bits <= 4'd0;
            tx_sh <= 10'h3ff;
        end else begin
            if (out_ready && core_out_valid) begin
                out_buf <= {(8*NB_OUT){1'b0}};
                out_buf[W_OUT-1:0] <= core_out;
                out_left <= NB_OUT;
                blink <= 20'hfffff;
            end
            if (tx_bits != 4'd0) begin
                if (tx_cnt != 16'd0) begin
                    tx_cnt <= tx_cnt - 16'd1;
                end else begin
                    tx_cnt <= DIV - 1;
                    tx_sh <= {1'b1, tx_sh[9:1]};
                    tx_bits <= tx_bits - 4'd1;
                end
            end else if (out_left != 16'd0) begin
                tx_sh <= {1'b1, out_buf[7:0], 1'b0};
                tx_bits <= 4'd10;
                tx_cnt <= DIV - 1;
                out_buf <= out_buf >> 8;
                out_left <= out_left - 16'd1;
            end
        end
    end
    assign TX = tx_sh[0];
    assign LEDR_N = ~overflow;
    assign LEDG_N = ~(blink != 20'd0);

    `HWGEN_CORE core (
        .clk(CLK),
        .rst(rst),
        .i__payload(beat),
        .i__valid(beat_valid),
        .i__ready(in_ready),
        .o__payload(core_out),
        .o__valid(core_out_valid),
        .o__ready(out_ready)
    );
endmodule
