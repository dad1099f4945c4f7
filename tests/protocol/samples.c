/* samples.c — see samples.h. */
#include "samples.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t seed[PB_SEED_BYTES] = "patchbay test relay key seed 01";

void pb_sample_keypair(uint8_t pk[PB_PUBLICKEY_BYTES],
                       uint8_t sk[PB_SECRETKEY_BYTES])
{
    crypto_sign_seed_keypair(pk, sk, seed);
}

/* Signs a statement of module and source for room/seq after prev_hash
 * into p (symbols: one var ggg for definitions, none for an expression;
 * origin_room/origin_seq: a replay, else NULL/0). */
static void sign_sample(pb_sample_patch *p, const char *room, uint64_t seq,
                        const uint8_t prev_hash[PB_HASH_BYTES],
                        size_t module_len, pb_lang lang, pb_patch_kind kind,
                        const char *origin_room, uint64_t origin_seq)
{
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    pb_sample_keypair(pk, sk);
    pb_symbol sym = {pb_cstr("ggg"), pb_cstr("d(d)")};
    pb_statement s = {0};
    s.room = pb_cstr(room);
    s.seq = seq;
    if (prev_hash)
        memcpy(s.prev_hash, prev_hash, PB_HASH_BYTES);
    pb_hash(p->module, module_len, s.module_hash);
    s.symbols = kind == PB_KIND_DEFS ? &sym : NULL;
    s.n_symbols = kind == PB_KIND_DEFS ? 1 : 0;
    s.author = pb_cstr("ada");
    s.lang = lang;
    pb_hash(p->source, strlen(p->source), s.source_hash);
    s.created_us = 1795000000000000ull + seq * 1000000ull;
    s.apply_us = s.created_us + 50000;
    memcpy(s.key, pk, PB_PUBLICKEY_BYTES);
    s.kind = kind;
    s.origin_room = pb_cstr(origin_room);
    s.origin_seq = origin_seq;

    pb_buf_init(&p->stmt);
    if (pb_statement_encode(&s, &p->stmt, NULL) != PB_OK)
        abort(); /* a bug in the sample, not an input */
    pb_sign(p->stmt.data, p->stmt.len, sk, p->sig);
    pb_hash(p->stmt.data, p->stmt.len, p->hash);
    p->patch.stmt = (pb_bytes){p->stmt.data, (uint32_t)p->stmt.len};
    p->patch.sig = (pb_bytes){p->sig, PB_SIG_BYTES};
    p->patch.module = (pb_bytes){p->module, (uint32_t)module_len};
    p->patch.source = pb_cstr(p->source);
    sodium_memzero(sk, sizeof sk);
}

static const uint8_t wasm_header[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};

void pb_sample_patch_make(pb_sample_patch *p, const char *room, uint64_t seq,
                          const uint8_t prev_hash[PB_HASH_BYTES], int variant)
{
    memset(p, 0, sizeof *p);
    memcpy(p->module, wasm_header, 8);
    size_t module_len = 8;
    if (variant) {
        /* A custom section so that each variant is a distinct module. */
        uint8_t extra[8] = {0, 6, 1, 'v', (uint8_t)variant, 0, 0, 0};
        memcpy(p->module + 8, extra, 5);
        module_len = 13;
    }
    snprintf(p->source, sizeof p->source,
             "double ggg(double v) { return v + %d; }", 48 + variant);
    sign_sample(p, room, seq, prev_hash, module_len, PB_LANG_C, PB_KIND_DEFS,
                NULL, 0);
}

void pb_sample_replay_make(pb_sample_patch *p, const char *room, uint64_t seq,
                           const uint8_t prev_hash[PB_HASH_BYTES],
                           const char *origin_room, uint64_t origin_seq)
{
    memset(p, 0, sizeof *p);
    memcpy(p->module, wasm_header, 8);
    snprintf(p->source, sizeof p->source,
             "double ggg(double v) { return v + 48; }");
    sign_sample(p, room, seq, prev_hash, 8, PB_LANG_C, PB_KIND_DEFS,
                origin_room, origin_seq);
}

void pb_sample_expr_make(pb_sample_patch *p, const char *room, uint64_t seq,
                         const uint8_t prev_hash[PB_HASH_BYTES])
{
    memset(p, 0, sizeof *p);
    /* an empty module with a custom section "e" */
    static const uint8_t extra[5] = {0, 3, 1, 'e', 0};
    memcpy(p->module, wasm_header, 8);
    memcpy(p->module + 8, extra, sizeof extra);
    snprintf(p->source, sizeof p->source, "(ggg 10)");
    sign_sample(p, room, seq, prev_hash, 8 + sizeof extra, PB_LANG_LISP,
                PB_KIND_EXPR, NULL, 0);
}

void pb_sample_patch_free(pb_sample_patch *p)
{
    pb_buf_free(&p->stmt);
}

#define N_SAMPLES 40
static pb_sample samples[N_SAMPLES];
static pb_sample_patch patch1, patch2, expr3;
static pb_diag_item diag_items[2];
static pb_patch history_items[2];
static pb_test_case test_cases[3];
static pb_peer peer_list[2];
static pb_buffer_info buffer_list[2];
static pb_buffer_data sync_items[2];

static pb_sample_head head2;

void pb_sample_head_make(pb_sample_head *h,
                         const uint8_t pk[PB_PUBLICKEY_BYTES],
                         const uint8_t sk[PB_SECRETKEY_BYTES])
{
    pb_head st = {0};
    st.room = pb_cstr("jam");
    st.epoch = 0; /* the sample chain starts at zero, as rooms before epochs */
    st.seq = 2;
    memcpy(st.hash, patch2.hash, PB_HASH_BYTES);
    st.time_us = 1795000003000000ull;
    memcpy(st.key, pk, PB_PUBLICKEY_BYTES);
    pb_buf_init(&h->stmt);
    if (pb_head_encode(&st, &h->stmt, NULL) != PB_OK)
        abort(); /* a bug in the sample, not an input */
    pb_sign(h->stmt.data, h->stmt.len, sk, h->sig);
}

static pb_frame make(pb_type t)
{
    pb_frame f;
    memset(&f, 0, sizeof f);
    f.type = t;
    return f;
}

static void build(void)
{
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    pb_sample_keypair(pk, sk);
    pb_sample_patch_make(&patch1, "jam", 1, NULL, 0);
    pb_sample_patch_make(&patch2, "jam", 2, patch1.hash, 1);
    pb_sample_expr_make(&expr3, "jam", 3, patch2.hash);
    int i = 0;
    pb_frame f;

    f = make(PB_T_HELLO);
    f.hello.token = pb_cstr("example-token-printed-by-patchbay-token");
    f.hello.client = pb_cstr("patchbay-cli/0.1.0");
    samples[i++] = (pb_sample){"hello", "an editor joins room jam", f};

    f = make(PB_T_HELLO);
    f.hello.token = pb_cstr("example-runtime-token");
    f.hello.client = pb_cstr("patchbay-runtime/0.1.0");
    f.hello.since_seq = 2;
    f.hello.device_id = pb_cstr("9f2c61d04b7e4a83b5a0c1e7d2f86e15");
    f.hello.device = (pb_device){
        .label = pb_cstr("pixel-7"),
        .platform = pb_cstr("Mozilla/5.0 (Linux; Android 14; Pixel 7) "
                            "Chrome/156.0"),
        .canvas_w = 480,
        .canvas_h = 1040,
        .screen_w = 412,
        .screen_h = 892,
        .dpr = 2.625,
        .features = pb_cstr("bigint,bulk-memory,simd,threads"),
        .ram_bytes = 8589934592ull,
        .cores = 8,
    };
    samples[i++] = (pb_sample){"hello_runtime",
                               "a phone joins as a runtime and describes "
                               "itself",
                               f};

    f = make(PB_T_WELCOME);
    f.welcome.room = pb_cstr("jam");
    f.welcome.role = PB_ROLE_EDITOR;
    f.welcome.name = pb_cstr("ada");
    f.welcome.client_id = 7;
    memcpy(f.welcome.key, pk, sizeof pk);
    f.welcome.head_seq = 2;
    memcpy(f.welcome.head_hash, patch2.hash, PB_HASH_BYTES);
    f.welcome.now_us = 1795000003000000ull;
    samples[i++] = (pb_sample){"welcome", "the relay accepts the editor", f};

    f = make(PB_T_ERROR);
    f.error.code = PB_ERR_AUTH_EXPIRED;
    f.error.message =
        pb_cstr("token expired at 2026-11-24T10:00Z for room \"jam\"");
    f.error.fatal = true;
    samples[i++] = (pb_sample){"error", "a fatal handshake error", f};

    f = make(PB_T_EVAL);
    f.eval.req = 42;
    f.eval.lang = PB_LANG_C;
    f.eval.name = pb_cstr("ggg.c");
    f.eval.source = pb_cstr("double ggg(double v) { return v + 49; }");
    samples[i++] = (pb_sample){"eval", "an editor evaluates a C definition", f};

    f = make(PB_T_EVAL);
    f.eval.req = 44;
    f.eval.lang = PB_LANG_LISP;
    f.eval.name = pb_cstr("repl.cljc");
    f.eval.source = pb_cstr("(ggg 10)");
    f.eval.expr = true;
    samples[i++] =
        (pb_sample){"eval_expr", "an editor evaluates an expression", f};

    f = make(PB_T_EVAL);
    f.eval.req = 45;
    f.eval.lang = PB_LANG_C;
    f.eval.name = pb_cstr("ggg.c");
    f.eval.source = pb_cstr("double ggg(double v) { return v + 48; }");
    f.eval.origin_room = pb_cstr("jam");
    f.eval.origin_seq = 1;
    samples[i++] = (pb_sample){"eval_replay",
                               "patchbay replay re-sends seq 1 of room jam", f};

    diag_items[0] = (pb_diag_item){
        3,  12,           3,
        15, PB_SEV_ERROR, pb_cstr("use of undeclared identifier 'x'")};
    diag_items[1] = (pb_diag_item){
        1, 1, 0, 0, PB_SEV_WARNING, pb_cstr("unused variable 'y'")};
    f = make(PB_T_DIAG);
    f.diag.req = 42;
    f.diag.ok = false;
    f.diag.items = diag_items;
    f.diag.n_items = 2;
    samples[i++] = (pb_sample){"diag", "compile diagnostics for eval 42", f};

    f = make(PB_T_DIAG);
    f.diag.req = 43;
    f.diag.ok = true;
    f.diag.seq = 2;
    samples[i++] = (pb_sample){"diag_ok", "eval 43 compiled into seq 2", f};

    f = make(PB_T_DIAG);
    f.diag.req = 44;
    f.diag.ok = true;
    f.diag.seq = 3;
    f.diag.expr = true;
    samples[i++] =
        (pb_sample){"diag_expr", "eval 44 is the expression of seq 3", f};

    f = make(PB_T_PATCH);
    f.patch = patch1.patch;
    samples[i++] = (pb_sample){"patch", "the room's first patch, signed", f};

    f = make(PB_T_PATCH);
    f.patch = expr3.patch;
    samples[i++] = (pb_sample){"patch_expr", "an expression's patch, seq 3", f};

    f = make(PB_T_ACK);
    f.ack.seq = 1;
    f.ack.state = PB_ACK_COMMITTED;
    f.ack.runtime_id = 9;
    f.ack.verify_us = 180;
    f.ack.prepare_us = 1100;
    f.ack.commit_at_us = 1795000001050200ull;
    f.ack.late_us = 200;
    f.ack.mem_bytes = 16777216;
    f.ack.table_size = 12;
    f.ack.modules = 1;
    samples[i++] = (pb_sample){"ack", "a runtime committed seq 1", f};

    f = make(PB_T_ACK);
    f.ack.seq = 2;
    f.ack.state = PB_ACK_FAILED;
    f.ack.error = pb_cstr("RuntimeError: divide by zero");
    f.ack.var = pb_cstr("ggg");
    f.ack.code = PB_ERR_TRAP;
    samples[i++] =
        (pb_sample){"ack_failed", "seq 2 trapped and rolled back", f};

    f = make(PB_T_ACK);
    f.ack.seq = 3;
    f.ack.state = PB_ACK_COMMITTED;
    f.ack.runtime_id = 9;
    f.ack.commit_at_us = 1795000003050100ull;
    f.ack.late_us = 100;
    f.ack.value = pb_cstr("58");
    f.ack.out = pb_cstr("ggg called with 10\n");
    samples[i++] = (pb_sample){"ack_value", "the value of expression seq 3", f};

    f = make(PB_T_PING);
    f.ping.t0_us = 1795000004000000ull;
    f.ping.unc_us = 350;
    samples[i++] = (pb_sample){"ping", "clock sync request", f};

    f = make(PB_T_PONG);
    f.pong.t0_us = 1795000004000000ull;
    f.pong.t1_us = 1795000004000350ull;
    f.pong.t2_us = 1795000004000410ull;
    samples[i++] = (pb_sample){"pong", "clock sync answer", f};

    f = make(PB_T_HISTORY_REQ);
    f.history_req.req = 5;
    f.history_req.mode = PB_HISTORY_RANGE;
    f.history_req.from_seq = 1;
    f.history_req.to_seq = 2;
    samples[i++] = (pb_sample){"history_req", "ask for seq 1..2", f};

    history_items[0] = patch1.patch;
    history_items[1] = patch2.patch;
    f = make(PB_T_HISTORY);
    f.history.req = 5;
    f.history.head_seq = 2;
    f.history.items = history_items;
    f.history.n_items = 2;
    samples[i++] = (pb_sample){"history", "seq 1..2 in one batch", f};

    f = make(PB_T_LOG);
    f.log.level = PB_LOG_INFO;
    f.log.text = pb_cstr("frame 120: 59.000000\n");
    f.log.runtime_id = 9;
    f.log.seq = 2;
    f.log.var = pb_cstr("pb_frame");
    samples[i++] = (pb_sample){"log", "printf output from a runtime", f};

    f = make(PB_T_TEST_REQ);
    f.test_req.req = 6;
    f.test_req.filter = pb_cstr("ggg");
    f.test_req.seq = 2;
    samples[i++] =
        (pb_sample){"test_req", "run tests whose name starts ggg", f};

    test_cases[0] = (pb_test_case){.name = pb_cstr("ggg_adds_49"),
                                   .ok = true,
                                   .us = 35,
                                   .status = PB_TEST_PASS};
    test_cases[1] = (pb_test_case){.name = pb_cstr("ggg_negative"),
                                   .ok = false,
                                   .message = pb_cstr("ggg(-49) == 1"),
                                   .us = 12,
                                   .status = PB_TEST_FAIL,
                                   .file = pb_cstr("ggg.c"),
                                   .line = 4};
    test_cases[2] = (pb_test_case){.name = pb_cstr("ggg_divides"),
                                   .ok = false,
                                   .message = pb_cstr("RuntimeError: "
                                                      "divide by zero"),
                                   .us = 20,
                                   .status = PB_TEST_TRAP,
                                   .var = pb_cstr("half"),
                                   .var_seq = 1};
    f = make(PB_T_TEST_RESULT);
    f.test_result.req = 6;
    f.test_result.runtime_id = 9;
    f.test_result.seq = 2;
    f.test_result.results = test_cases;
    f.test_result.n_results = 3;
    samples[i++] = (pb_sample){"test_result",
                               "one test passed, one failed, one trapped", f};

    peer_list[0] = (pb_peer){.id = 7,
                             .name = pb_cstr("ada"),
                             .role = PB_ROLE_EDITOR,
                             .client = pb_cstr("patchbay-cli/0.1.0")};
    peer_list[1] = (pb_peer){.id = 9,
                             .name = pb_cstr("stage-left"),
                             .role = PB_ROLE_RUNTIME,
                             .client = pb_cstr("Chromium 156"),
                             .last_ack = PB_ACK_COMMITTED,
                             .last_seq = 2,
                             .skew_us = -300,
                             .mem_bytes = 16777216,
                             .unc_us = 250,
                             .device = {.label = pb_cstr("stage-left"),
                                        .platform = pb_cstr("Chromium 156"),
                                        .canvas_w = 960,
                                        .canvas_h = 540,
                                        .dpr = 1}};
    f = make(PB_T_PEERS);
    f.peers.event = PB_PEERS_SNAPSHOT;
    f.peers.peers = peer_list;
    f.peers.n_peers = 2;
    samples[i++] = (pb_sample){"peers", "who is in the room", f};

    f = make(PB_T_ROOM);
    f.room.tempo_bpm = 120.0;
    f.room.quantum = 4;
    f.room.lead_us = 50000;
    samples[i++] = (pb_sample){"room", "tempo 120 BPM, apply on the bar", f};

    f = make(PB_T_SNAPSHOT_REQ);
    f.snapshot_req.req = 8;
    f.snapshot_req.at_us = 1795000010000000ull;
    f.snapshot_req.editor_id = 7;
    samples[i++] = (pb_sample){"snapshot_req",
                               "draw the frame of a room time, as "
                               "forwarded to runtimes",
                               f};

    /* a 1x1 opaque red PNG */
    static const uint8_t png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
        0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
        0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
        0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    f = make(PB_T_SNAPSHOT);
    f.snapshot.req = 8;
    f.snapshot.editor_id = 7;
    f.snapshot.runtime_id = 9;
    f.snapshot.seq = 2;
    f.snapshot.at_us = 1795000010000000ull;
    f.snapshot.width = 1;
    f.snapshot.height = 1;
    f.snapshot.png = (pb_bytes){png, sizeof png};
    samples[i++] = (pb_sample){"snapshot", "a runtime's picture (1x1)", f};

    f = make(PB_T_LOG_REQ);
    f.log_req.req = 9;
    f.log_req.runtime_id = 9;
    samples[i++] = (pb_sample){"log_req", "recent output of runtime 9", f};

    f = make(PB_T_LOG_END);
    f.log_end.req = 9;
    f.log_end.count = 40;
    f.log_end.dropped = 3;
    samples[i++] = (pb_sample){"log_end", "40 frames replayed, 3 dropped", f};

    pb_sample_head_make(&head2, pk, sk);
    f = make(PB_T_HEAD);
    f.head.stmt = (pb_bytes){head2.stmt.data, (uint32_t)head2.stmt.len};
    f.head.sig = (pb_bytes){head2.sig, PB_SIG_BYTES};
    samples[i++] = (pb_sample){"head", "room jam is at seq 2, signed", f};

    /* Shared buffers: real Yjs bytes (yjs 13.6, client id 7): the buffer's
     * first line typed, then "48" changed to "49"; the merged snapshot;
     * relative positions of the line's start and end; ada's awareness. */
    static const uint8_t y_insert[] = {
        0x01, 0x01, 0x07, 0x00, 0x04, 0x01, 0x04, 0x74, 0x65, 0x78, 0x74,
        0x28, 'd',  'o',  'u',  'b',  'l',  'e',  ' ',  'g',  'g',  'g',
        '(',  'd',  'o',  'u',  'b',  'l',  'e',  ' ',  'v',  ')',  ' ',
        '{',  ' ',  'r',  'e',  't',  'u',  'r',  'n',  ' ',  'v',  ' ',
        '+',  ' ',  '4',  '8',  ';',  ' ',  '}',  '\n', 0x00};
    static const uint8_t y_delete[] = {0x00, 0x01, 0x07, 0x01, 0x23, 0x01};
    static const uint8_t y_nine[] = {0x01, 0x01, 0x07, 0x28, 0xc4, 0x07,
                                     0x23, 0x07, 0x24, 0x01, 0x39, 0x00};
    static const uint8_t y_snapshot[] = {
        0x01, 0x04, 0x07, 0x00, 0x04, 0x01, 0x04, 0x74, 0x65, 0x78, 0x74, 0x23,
        'd',  'o',  'u',  'b',  'l',  'e',  ' ',  'g',  'g',  'g',  '(',  'd',
        'o',  'u',  'b',  'l',  'e',  ' ',  'v',  ')',  ' ',  '{',  ' ',  'r',
        'e',  't',  'u',  'r',  'n',  ' ',  'v',  ' ',  '+',  ' ',  '4',  0x81,
        0x07, 0x22, 0x01, 0x84, 0x07, 0x23, 0x04, ';',  ' ',  '}',  '\n', 0xc4,
        0x07, 0x23, 0x07, 0x24, 0x01, 0x39, 0x01, 0x07, 0x01, 0x23, 0x01};
    static const uint8_t y_start[] = {0x00, 0x07, 0x00, 0x00};
    static const uint8_t y_end[] = {0x00, 0x07, 0x27, 0x00};
    static const char y_aware_state[] =
        "{\"user\":{\"name\":\"ada\",\"color\":\"#e0803a\"},\"peer\":7}";
    static uint8_t y_aware[4 + sizeof y_aware_state - 1];
    y_aware[0] = 0x01; /* one client */
    y_aware[1] = 0x07; /* its id */
    y_aware[2] = 0x01; /* its clock */
    y_aware[3] = (uint8_t)(sizeof y_aware_state - 1);
    memcpy(y_aware + 4, y_aware_state, sizeof y_aware_state - 1);
#define BYTES(a) ((pb_bytes){a, (uint32_t)sizeof a})

    f = make(PB_T_HELLO);
    f.hello.token = pb_cstr("example-token-printed-by-patchbay-token");
    f.hello.client = pb_cstr("patchbay-web/0.1.0");
    f.hello.buffers = true;
    samples[i++] =
        (pb_sample){"hello_editor", "an editor page joins, with buffers", f};

    f = make(PB_T_EVAL);
    f.eval.req = 43;
    f.eval.lang = PB_LANG_C;
    f.eval.name = pb_cstr("main.c");
    f.eval.source = pb_cstr("double ggg(double v) { return v + 49; }");
    f.eval.buffer = 1;
    f.eval.start = BYTES(y_start);
    f.eval.end = BYTES(y_end);
    samples[i++] = (pb_sample){
        "eval_buffer", "an editor evaluates a range of shared buffer 1", f};

    buffer_list[0] = (pb_buffer_info){1, pb_cstr("main.c"), PB_LANG_C};
    buffer_list[1] = (pb_buffer_info){2, pb_cstr("visual.cljc"), PB_LANG_LISP};
    f = make(PB_T_BUFFERS);
    f.buffers.buffers = buffer_list;
    f.buffers.n_buffers = 2;
    f.buffers.req = 3;
    f.buffers.peer = 7;
    samples[i++] = (pb_sample){
        "buffers", "the room's buffers, after client 7 created one", f};

    f = make(PB_T_BUFFER_OP);
    f.buffer_op.req = 3;
    f.buffer_op.op = PB_BUFFER_OP_CREATE;
    f.buffer_op.name = pb_cstr("visual.cljc");
    f.buffer_op.lang = PB_LANG_LISP;
    samples[i++] = (pb_sample){"buffer_op", "create a Lisp buffer", f};

    sync_items[0] = (pb_buffer_data){BYTES(y_insert)};
    sync_items[1] = (pb_buffer_data){BYTES(y_delete)};
    f = make(PB_T_BUFFER_SYNC);
    f.buffer_sync.buffer = 1;
    f.buffer_sync.useq = 2;
    f.buffer_sync.updates = sync_items;
    f.buffer_sync.n_updates = 2;
    samples[i++] = (pb_sample){
        "buffer_sync", "buffer 1 as stored: two updates, the last 2", f};

    f = make(PB_T_BUFFER_UPDATE);
    f.buffer_update.buffer = 1;
    f.buffer_update.data = BYTES(y_nine);
    f.buffer_update.useq = 3;
    f.buffer_update.peer = 7;
    samples[i++] = (pb_sample){
        "buffer_update", "client 7 typed a 9, as forwarded to the room", f};

    f = make(PB_T_BUFFER_ACK);
    f.buffer_ack.buffer = 1;
    f.buffer_ack.req = 12;
    f.buffer_ack.useq = 3;
    samples[i++] =
        (pb_sample){"buffer_ack", "the sender's update 12 stored as 3", f};

    f = make(PB_T_BUFFER_COMPACT);
    f.buffer_compact.buffer = 1;
    f.buffer_compact.req = 13;
    f.buffer_compact.useq = 3;
    f.buffer_compact.data = BYTES(y_snapshot);
    samples[i++] =
        (pb_sample){"buffer_compact", "one snapshot for updates 1 to 3", f};

    f = make(PB_T_BUFFER_AWARE);
    f.buffer_aware.buffer = 1;
    f.buffer_aware.data = BYTES(y_aware);
    f.buffer_aware.peer = 7;
    samples[i++] =
        (pb_sample){"buffer_aware", "ada is in buffer 1, as forwarded", f};

    f = make(PB_T_BUFFER_EVAL);
    f.buffer_eval.buffer = 1;
    f.buffer_eval.seq = 2;
    f.buffer_eval.peer = 7;
    f.buffer_eval.author = pb_cstr("ada");
    f.buffer_eval.start = BYTES(y_start);
    f.buffer_eval.end = BYTES(y_end);
    samples[i++] =
        (pb_sample){"buffer_eval", "ada's evaluated range became patch 2", f};
#undef BYTES

    f = make(PB_T_BUNDLE);
    f.bundle.room = pb_cstr("jam");
    memcpy(f.bundle.key, pk, sizeof pk);
    f.bundle.count = 2;
    memcpy(f.bundle.head_hash, patch2.hash, PB_HASH_BYTES);
    f.bundle.exported_us = 1795000009000000ull;
    f.bundle.tempo_bpm = 120;
    f.bundle.quantum = 4;
    samples[i++] = (pb_sample){"bundle",
                               "the head of a bundle file of room jam: 2 "
                               "patch frames follow",
                               f};

    if (i != N_SAMPLES)
        abort();
    sodium_memzero(sk, sizeof sk);
}

const pb_sample *pb_samples(size_t *n)
{
    static int built;
    if (!built) {
        build();
        built = 1;
    }
    *n = N_SAMPLES;
    return samples;
}
