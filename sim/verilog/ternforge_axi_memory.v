// An AXI4 memory for simulation (not for synthesis): DDR as the accelerator sees it,
// inside the simulator, so that a run costs no Python work per cycle.
//
// Timing, as ternforge.sim.cocotb.axi's Python models (with no stalls, cycle for cycle):
//   read   every burst becomes ready +DDR_LATENCY cycles after its address handshake (up to
//          QUEUE bursts wait); data leaves in order at no more than +DDR_MILLIBYTES / 1000
//          bytes a cycle on average (a token bucket of one word plus one cycle's bytes).
//   write  one burst at a time: the address, then its data, then the response
//          +DDR_WLATENCY cycles after the last word; every byte whose strobe is set.
// Ports: PORTS read ports (the read channels of port p are bits p of every packed vector),
//   each with its own queue, bandwidth and stalls, on one memory; writes on port 0 only (as
//   ternforge.hdl.common.striper.AxiStriper uses several HP ports).
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
    parameter integer QUEUE = 16,
    parameter integer PORTS = 1
) (
    input  wire                         clk,
    input  wire                         rst,
    input  wire [PORTS*ADDR_BITS-1:0]   s_axi_araddr,
    input  wire [PORTS*8-1:0]           s_axi_arlen,
    input  wire [PORTS-1:0]             s_axi_arvalid,
    output wire [PORTS-1:0]             s_axi_arready,
    output wire [PORTS*DATA_BITS-1:0]   s_axi_rdata,
    output wire [PORTS*2-1:0]           s_axi_rresp,
    output wire [PORTS-1:0]             s_axi_rlast,
    output wire [PORTS-1:0]             s_axi_rvalid,
    input  wire [PORTS-1:0]             s_axi_rready,
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

    // one xorshift32 stream a write channel: AW, W, B (2 to 4; a port's AR and R have theirs)
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

    assign s_axi_rresp = {PORTS{2'b00}};
    assign s_axi_bresp = 2'b00;

    // -- read side: one a port --------------------------------------------------------------
    reg [63:0] cycle;
    always @(posedge clk) begin
        if (rst) cycle <= 0;
        else cycle <= cycle + 1;
    end

    wire [63:0] port_bytes [0:PORTS-1];
    reg [63:0] bytes_read /* verilator public */;
    always @* begin : total
        integer q;
        bytes_read = 0;
        for (q = 0; q < PORTS; q = q + 1) bytes_read = bytes_read + port_bytes[q];
    end

    genvar p;
    generate for (p = 0; p < PORTS; p = p + 1) begin : port
        wire [ADDR_BITS-1:0] araddr = s_axi_araddr[p*ADDR_BITS +: ADDR_BITS];
        wire [7:0] arlen = s_axi_arlen[p*8 +: 8];
        wire arvalid = s_axi_arvalid[p], rready = s_axi_rready[p];
        reg arready, rvalid, rlast;
        reg [DATA_BITS-1:0] rdata;
        assign s_axi_arready[p] = arready;
        assign s_axi_rvalid[p] = rvalid;
        assign s_axi_rlast[p] = rlast;
        assign s_axi_rdata[p*DATA_BITS +: DATA_BITS] = rdata;

        reg [31:0] noise_ar, noise_r;
        reg [63:0] bytes;
        assign port_bytes[p] = bytes;
        reg [63:0] ready_at [0:QUEUE-1];
        reg [ADDR_BITS-1:0] next_address [0:QUEUE-1];
        reg [8:0] words_left [0:QUEUE-1];
        reg [QBITS:0] head, tail;
        integer tokens;

        // (the queue is updated with blocking assignments, so that this cycle's new burst
        // and its advance are seen at once, as the Python model sees them)
        /* verilator lint_off BLKSEQ */
        always @(posedge clk) begin : read_side
            reg sent, holding, offer;
            reg [QBITS:0] h, t, waiting;
            if (rst) begin
                head <= 0; tail <= 0; tokens = 0; bytes <= 0;
                rvalid <= 0; rlast <= 0; arready <= 1;
                noise_ar <= seed * (5 * p + 1) + 32'h9e3779b9;
                noise_r <= seed * (5 * p + 2) + 32'h9e3779b9;
            end else begin
                h = head; t = tail;
                if (arvalid && arready) begin
                    ready_at[t[QBITS-1:0]] = cycle + latency;
                    next_address[t[QBITS-1:0]] = araddr;
                    words_left[t[QBITS-1:0]] = arlen + 1;
                    t = t + 1;
                end
                sent = rvalid && rready;
                if (sent) begin
                    bytes <= bytes + WORD_BYTES;
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
                holding = rvalid && !sent;  // AXI: valid stays up until taken
                offer = holding || (h != t && ready_at[h[QBITS-1:0]] <= cycle + 1
                                    && tokens >= WORD_BYTES * 1000 && !held(noise_r));
                if (offer && !holding) begin
                    rdata <= mem[next_address[h[QBITS-1:0]] >> SHIFT];
                    rlast <= words_left[h[QBITS-1:0]] == 1;
                end
                rvalid <= offer;
                noise_ar <= xorshift(noise_ar);
                noise_r <= xorshift(noise_r);
                waiting = t - h;  // (in QBITS + 1 bits: the pointers wrap)
                arready <= waiting < QUEUE - 1 && !held(noise_ar);
                head <= h; tail <= t;
            end
        end
        /* verilator lint_on BLKSEQ */
    end endgenerate

    // -- write side -----------------------------------------------------------------------
    localparam [1:0] W_ADDRESS = 0, W_DATA = 1, W_WAIT = 2, W_ANSWER = 3;
    reg [1:0] wstate;
    reg [ADDR_BITS-1:0] waddress;
    integer countdown, b;

    always @(posedge clk) begin : write_side
        if (rst) begin
            for (b = 2; b < 5; b = b + 1) noise[b] <= seed * (b + 1) + 32'h9e3779b9;
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
