// An AXI4 memory for simulation (not for synthesis): DDR as the accelerator sees it,
// inside the simulator, so that a run costs no Python work per cycle.
//
// Timing, as ternforge.sim.cocotb.axi's Python models (with no stalls, cycle for cycle):
//   read   every burst becomes ready +DDR_LATENCY cycles after its address handshake (up to
//          QUEUE bursts wait); data leaves in order at no more than +DDR_MILLIBYTES / 1000
//          bytes a cycle on average (a token bucket of one word plus one cycle's bytes).
//   write  one burst at a time: the address, then its data, then the response
//          +DDR_WLATENCY cycles after the last word; every byte whose strobe is set.
// Stalls: with +DDR_STALL=P (per mille), each cycle every ready (AR, AW, W) and every new
// read beat or write response is held back with probability P/1000 (xorshift32 streams seeded
// by +DDR_SEED), so that every channel sees random back-pressure.
//
// Back door: +DDR_INIT=<file> loads the image with $readmemh (one word a line, word 0
// first); the words array `mem` can be read and written through VPI, and `bytes_read`
// counts the bytes the read channel delivered.
`default_nettype none

module ternforge_axi_memory #(
    parameter integer ADDR_BITS = 32,
    parameter integer DATA_BITS = 512,
    parameter integer WORDS = 65536,
    parameter integer QUEUE = 16
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire [ADDR_BITS-1:0]   s_axi_araddr,
    input  wire [7:0]             s_axi_arlen,
    input  wire                   s_axi_arvalid,
    output reg                    s_axi_arready,
    output reg  [DATA_BITS-1:0]   s_axi_rdata,
    output wire [1:0]             s_axi_rresp,
    output reg                    s_axi_rlast,
    output reg                    s_axi_rvalid,
    input  wire                   s_axi_rready,
    input  wire [ADDR_BITS-1:0]   s_axi_awaddr,
    input  wire [7:0]             s_axi_awlen,
    input  wire                   s_axi_awvalid,
    output reg                    s_axi_awready,
    input  wire [DATA_BITS-1:0]   s_axi_wdata,
    input  wire [DATA_BITS/8-1:0] s_axi_wstrb,
    input  wire                   s_axi_wlast,
    input  wire                   s_axi_wvalid,
    output reg                    s_axi_wready,
    output wire [1:0]             s_axi_bresp,
    output reg                    s_axi_bvalid,
    input  wire                   s_axi_bready
);
    localparam integer WORD_BYTES = DATA_BITS / 8;
    localparam integer SHIFT = $clog2(WORD_BYTES);
    localparam integer QBITS = $clog2(QUEUE);

    reg [DATA_BITS-1:0] mem [0:WORDS-1] /* verilator public_flat_rw */;

    // run-time options
    integer latency, wlatency, millibytes, stall;
    reg [31:0] seed;
    reg [1023:0] init_file;
    initial begin
        if (!$value$plusargs("DDR_LATENCY=%d", latency)) latency = 20;
        if (!$value$plusargs("DDR_WLATENCY=%d", wlatency)) wlatency = 10;
        if (!$value$plusargs("DDR_MILLIBYTES=%d", millibytes)) millibytes = 64000;
        if (!$value$plusargs("DDR_STALL=%d", stall)) stall = 0;
        if (!$value$plusargs("DDR_SEED=%d", seed)) seed = 1;
        if ($value$plusargs("DDR_INIT=%s", init_file)) $readmemh(init_file, mem);
    end

    // one xorshift32 stream a channel: AR, R, AW, W, B
    reg [31:0] noise [0:4];
    function automatic [31:0] xorshift(input [31:0] x);
        reg [31:0] y;
        begin
            y = x ^ (x << 13);
            y = y ^ (y >> 17);
            xorshift = y ^ (y << 5);
        end
    endfunction
    function automatic held(input [31:0] x);
        held = stall != 0 && (x % 1000) < stall;
    endfunction

    assign s_axi_rresp = 2'b00;
    assign s_axi_bresp = 2'b00;

    // -- read side ------------------------------------------------------------------------
    reg [63:0] cycle;
    reg [63:0] bytes_read /* verilator public */;
    reg [63:0] ready_at [0:QUEUE-1];
    reg [ADDR_BITS-1:0] next_address [0:QUEUE-1];
    reg [8:0] words_left [0:QUEUE-1];
    reg [QBITS:0] head, tail;
    integer tokens;

    // (the queue is updated with blocking assignments, so that this cycle's new burst and
    // its advance are seen at once, as the Python model sees them)
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin : read_side
        reg sent, holding, offer;
        reg [QBITS:0] h, t, waiting;
        integer k;
        if (rst) begin
            cycle <= 0; head <= 0; tail <= 0; tokens = 0; bytes_read <= 0;
            s_axi_rvalid <= 0; s_axi_rlast <= 0; s_axi_arready <= 1;
            for (k = 0; k < 5; k = k + 1) noise[k] <= seed * (k + 1) + 32'h9e3779b9;
        end else begin
            h = head; t = tail;
            if (s_axi_arvalid && s_axi_arready) begin
                ready_at[t[QBITS-1:0]] = cycle + latency;
                next_address[t[QBITS-1:0]] = s_axi_araddr;
                words_left[t[QBITS-1:0]] = s_axi_arlen + 1;
                t = t + 1;
            end
            sent = s_axi_rvalid && s_axi_rready;
            if (sent) begin
                bytes_read <= bytes_read + WORD_BYTES;
                tokens = tokens - WORD_BYTES * 1000;
                if (words_left[h[QBITS-1:0]] == 1) h = h + 1;
                else begin
                    next_address[h[QBITS-1:0]] = next_address[h[QBITS-1:0]] + WORD_BYTES;
                    words_left[h[QBITS-1:0]] = words_left[h[QBITS-1:0]] - 1;
                end
            end
            // a bucket of one word plus one cycle's bytes
            tokens = tokens + millibytes;
            if (tokens > WORD_BYTES * 1000 + millibytes) tokens = WORD_BYTES * 1000 + millibytes;
            holding = s_axi_rvalid && !sent;  // AXI: valid stays up until taken
            offer = holding || (h != t && ready_at[h[QBITS-1:0]] <= cycle + 1
                                && tokens >= WORD_BYTES * 1000 && !held(noise[1]));
            if (offer && !holding) begin
                s_axi_rdata <= mem[next_address[h[QBITS-1:0]] >> SHIFT];
                s_axi_rlast <= words_left[h[QBITS-1:0]] == 1;
            end
            s_axi_rvalid <= offer;
            noise[0] <= xorshift(noise[0]);
            noise[1] <= xorshift(noise[1]);
            waiting = t - h;  // (in QBITS + 1 bits: the pointers wrap)
            s_axi_arready <= waiting < QUEUE - 1 && !held(noise[0]);
            head <= h; tail <= t; cycle <= cycle + 1;
        end
    end
    /* verilator lint_on BLKSEQ */

    // -- write side -----------------------------------------------------------------------
    localparam [1:0] W_ADDRESS = 0, W_DATA = 1, W_WAIT = 2, W_ANSWER = 3;
    reg [1:0] wstate;
    reg [ADDR_BITS-1:0] waddress;
    integer countdown, b;

    always @(posedge clk) begin : write_side
        if (rst) begin
            wstate <= W_ADDRESS; s_axi_awready <= 1; s_axi_wready <= 0; s_axi_bvalid <= 0;
        end else begin
            noise[2] <= xorshift(noise[2]);
            noise[3] <= xorshift(noise[3]);
            noise[4] <= xorshift(noise[4]);
            case (wstate)
                W_ADDRESS: begin
                    if (s_axi_awvalid && s_axi_awready) begin
                        waddress <= s_axi_awaddr;
                        s_axi_awready <= 0;
                        s_axi_wready <= !held(noise[3]);
                        wstate <= W_DATA;
                    end else s_axi_awready <= !held(noise[2]);
                end
                W_DATA: begin
                    if (s_axi_wvalid && s_axi_wready) begin
                        for (b = 0; b < WORD_BYTES; b = b + 1)
                            if (s_axi_wstrb[b]) mem[waddress >> SHIFT][8 * b +: 8] <= s_axi_wdata[8 * b +: 8];
                        waddress <= waddress + WORD_BYTES;
                        if (s_axi_wlast) begin  // answered wlatency cycles later
                            s_axi_wready <= 0;
                            countdown <= wlatency - 1;
                            s_axi_bvalid <= wlatency == 0;
                            wstate <= wlatency == 0 ? W_ANSWER : W_WAIT;
                        end else s_axi_wready <= !held(noise[3]);
                    end else s_axi_wready <= !held(noise[3]);
                end
                W_WAIT: begin
                    if (countdown <= 0 && !held(noise[4])) begin
                        s_axi_bvalid <= 1;
                        wstate <= W_ANSWER;
                    end else countdown <= countdown - 1;
                end
                W_ANSWER: begin
                    if (s_axi_bready) begin
                        s_axi_bvalid <= 0;
                        s_axi_awready <= !held(noise[2]);
                        wstate <= W_ADDRESS;
                    end
                end
            endcase
        end
    end
endmodule

`default_nettype wire
