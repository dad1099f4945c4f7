/* frame.c — the frame tables (one per frame type, docs/PROTOCOL.md
 * § Frames) and the frame-level decode/encode: the "v" and "t" keys, the
 * byte and value limits, and ownership of decoded memory. */
#include "internal.h"

#include <string.h>

_Static_assert(sizeof(pb_role) == sizeof(int), "enums are stored as int");

#define OFF(type, member) ((uint16_t)offsetof(type, member))
#define FIELD(type, m, kind, req, max)                                         \
    {                                                                          \
#m, kind, req, OFF(type, m), 0, max, NULL, NULL                        \
    }
#define ENUMF(type, m, req, names, n)                                          \
    {                                                                          \
#m, PB_K_ENUM, req, OFF(type, m), 0, n, names, NULL                    \
    }
#define ARRAYF(type, m, cnt, elem, max)                                        \
    {                                                                          \
#m, PB_K_ARRAY, false, OFF(type, m), OFF(type, cnt), max, NULL, &elem  \
    }
#define OBJ(name, type, table)                                                 \
    {                                                                          \
        name, sizeof(type), table, sizeof table / sizeof table[0]              \
    }
#define REQ true
#define OPT false

/* The device description, flat among the fields of hello and of a peer
 * (its own keys, one table of rules for both). */
#define DEVICEF(type, m, kind, max)                                            \
    {                                                                          \
#m, kind, OPT, OFF(type, device.m), 0, max, NULL, NULL                 \
    }
#define DEVICE_FIELDS(type)                                                    \
    DEVICEF(type, label, PB_K_STR, PB_MAX_NAME_BYTES),                         \
        DEVICEF(type, platform, PB_K_STR, PB_MAX_CLIENT_BYTES),                \
        DEVICEF(type, canvas_w, PB_K_U32, PB_MAX_CANVAS_SIDE),                 \
        DEVICEF(type, canvas_h, PB_K_U32, PB_MAX_CANVAS_SIDE),                 \
        DEVICEF(type, screen_w, PB_K_U32, PB_MAX_CANVAS_SIDE),                 \
        DEVICEF(type, screen_h, PB_K_U32, PB_MAX_CANVAS_SIDE),                 \
        DEVICEF(type, dpr, PB_K_F64, 0),                                       \
        DEVICEF(type, features, PB_K_STR, PB_MAX_CLIENT_BYTES),                \
        DEVICEF(type, ram_bytes, PB_K_U64, 0),                                 \
        DEVICEF(type, cores, PB_K_U32, 0)

static const pb_field hello_f[] = {
    FIELD(pb_hello, token, PB_K_STR, REQ, PB_MAX_TOKEN_BYTES),
    FIELD(pb_hello, client, PB_K_STR, OPT, PB_MAX_CLIENT_BYTES),
    FIELD(pb_hello, since_seq, PB_K_U64, OPT, 0),
    FIELD(pb_hello, device_id, PB_K_STR, OPT, PB_MAX_NAME_BYTES),
    DEVICE_FIELDS(pb_hello),
    FIELD(pb_hello, buffers, PB_K_BOOL, OPT, 0),
};
static const pb_field welcome_f[] = {
    FIELD(pb_welcome, room, PB_K_STR, REQ, PB_MAX_NAME_BYTES),
    ENUMF(pb_welcome, role, REQ, pb_role_names, PB_N_ROLES),
    FIELD(pb_welcome, name, PB_K_STR, REQ, PB_MAX_NAME_BYTES),
    FIELD(pb_welcome, client_id, PB_K_U64, REQ, 0),
    FIELD(pb_welcome, key, PB_K_HASH, REQ, 0),
    FIELD(pb_welcome, head_seq, PB_K_U64, OPT, 0),
    FIELD(pb_welcome, head_hash, PB_K_HASH, REQ, 0),
    FIELD(pb_welcome, now_us, PB_K_U64, REQ, 0),
};
static const pb_field error_f[] = {
    FIELD(pb_error, code, PB_K_U32, REQ, 0),
    FIELD(pb_error, message, PB_K_STR, REQ, PB_MAX_MESSAGE_BYTES),
    FIELD(pb_error, req, PB_K_U64, OPT, 0),
    FIELD(pb_error, fatal, PB_K_BOOL, OPT, 0),
};
static const pb_field eval_f[] = {
    FIELD(pb_eval, req, PB_K_U64, REQ, 0),
    ENUMF(pb_eval, lang, REQ, pb_lang_names, PB_N_LANGS),
    FIELD(pb_eval, name, PB_K_STR, OPT, PB_MAX_PATH_BYTES),
    FIELD(pb_eval, source, PB_K_STR, REQ, PB_MAX_SOURCE_BYTES),
    FIELD(pb_eval, expr, PB_K_BOOL, OPT, 0),
    FIELD(pb_eval, buffer, PB_K_U64, OPT, 0),
    FIELD(pb_eval, start, PB_K_BIN, OPT, PB_MAX_RELPOS_BYTES),
    FIELD(pb_eval, end, PB_K_BIN, OPT, PB_MAX_RELPOS_BYTES),
    FIELD(pb_eval, origin_room, PB_K_STR, OPT, PB_MAX_NAME_BYTES),
    FIELD(pb_eval, origin_seq, PB_K_U64, OPT, 0),
};
static const pb_field diag_item_f[] = {
    FIELD(pb_diag_item, line, PB_K_U32, REQ, 0),
    FIELD(pb_diag_item, col, PB_K_U32, REQ, 0),
    FIELD(pb_diag_item, end_line, PB_K_U32, OPT, 0),
    FIELD(pb_diag_item, end_col, PB_K_U32, OPT, 0),
    ENUMF(pb_diag_item, severity, REQ, pb_severity_names, PB_N_SEVERITIES),
    FIELD(pb_diag_item, message, PB_K_STR, REQ, PB_MAX_MESSAGE_BYTES),
};
static const pb_obj diag_item_o = OBJ("diag item", pb_diag_item, diag_item_f);
static const pb_field diag_f[] = {
    FIELD(pb_diag, req, PB_K_U64, REQ, 0),
    FIELD(pb_diag, ok, PB_K_BOOL, REQ, 0),
    FIELD(pb_diag, seq, PB_K_U64, OPT, 0),
    FIELD(pb_diag, expr, PB_K_BOOL, OPT, 0),
    ARRAYF(pb_diag, items, n_items, diag_item_o, PB_MAX_DIAGS),
};
static const pb_field patch_f[] = {
    FIELD(pb_patch, stmt, PB_K_BIN, REQ, PB_MAX_STATEMENT_BYTES),
    FIELD(pb_patch, sig, PB_K_SIG, REQ, 0),
    FIELD(pb_patch, module, PB_K_BIN, OPT, PB_MAX_MODULE_BYTES),
    FIELD(pb_patch, source, PB_K_STR, OPT, PB_MAX_SOURCE_BYTES),
};
static const pb_obj patch_o = OBJ("history item", pb_patch, patch_f);
static const pb_field head_f[] = {
    FIELD(pb_head_frame, stmt, PB_K_BIN, REQ, PB_MAX_HEAD_BYTES),
    FIELD(pb_head_frame, sig, PB_K_SIG, REQ, 0),
};
static const pb_field ack_f[] = {
    FIELD(pb_ack, seq, PB_K_U64, REQ, 0),
    ENUMF(pb_ack, state, REQ, pb_ack_state_names, PB_N_ACK_STATES),
    FIELD(pb_ack, runtime_id, PB_K_U64, OPT, 0),
    FIELD(pb_ack, verify_us, PB_K_U64, OPT, 0),
    FIELD(pb_ack, prepare_us, PB_K_U64, OPT, 0),
    FIELD(pb_ack, commit_at_us, PB_K_U64, OPT, 0),
    FIELD(pb_ack, late_us, PB_K_I64, OPT, 0),
    FIELD(pb_ack, mem_bytes, PB_K_U64, OPT, 0),
    FIELD(pb_ack, table_size, PB_K_U64, OPT, 0),
    FIELD(pb_ack, modules, PB_K_U64, OPT, 0),
    FIELD(pb_ack, error, PB_K_STR, OPT, PB_MAX_MESSAGE_BYTES),
    FIELD(pb_ack, var, PB_K_STR, OPT, PB_MAX_NAME_BYTES),
    FIELD(pb_ack, code, PB_K_U32, OPT, 0),
    FIELD(pb_ack, value, PB_K_STR, OPT, PB_MAX_MESSAGE_BYTES),
    FIELD(pb_ack, out, PB_K_STR, OPT, PB_MAX_LOG_BYTES),
    FIELD(pb_ack, stale_since_us, PB_K_U64, OPT, 0),
};
static const pb_field ping_f[] = {
    FIELD(pb_ping, t0_us, PB_K_U64, REQ, 0),
    FIELD(pb_ping, unc_us, PB_K_U64, OPT, 0),
};
static const pb_field pong_f[] = {
    FIELD(pb_pong, t0_us, PB_K_U64, REQ, 0),
    FIELD(pb_pong, t1_us, PB_K_U64, REQ, 0),
    FIELD(pb_pong, t2_us, PB_K_U64, REQ, 0),
};
static const pb_field history_req_f[] = {
    FIELD(pb_history_req, req, PB_K_U64, REQ, 0),
    ENUMF(pb_history_req, mode, REQ, pb_history_mode_names, PB_N_HISTORY_MODES),
    FIELD(pb_history_req, from_seq, PB_K_U64, OPT, 0),
    FIELD(pb_history_req, to_seq, PB_K_U64, OPT, 0),
};
static const pb_field history_f[] = {
    FIELD(pb_history, req, PB_K_U64, REQ, 0),
    FIELD(pb_history, head_seq, PB_K_U64, REQ, 0),
    FIELD(pb_history, more, PB_K_BOOL, OPT, 0),
    ARRAYF(pb_history, items, n_items, patch_o, PB_MAX_HISTORY_ITEMS),
};
static const pb_field log_f[] = {
    ENUMF(pb_log, level, REQ, pb_log_level_names, PB_N_LOG_LEVELS),
    FIELD(pb_log, text, PB_K_STR, REQ, PB_MAX_LOG_BYTES),
    FIELD(pb_log, runtime_id, PB_K_U64, OPT, 0),
    FIELD(pb_log, seq, PB_K_U64, OPT, 0),
    FIELD(pb_log, var, PB_K_STR, OPT, PB_MAX_NAME_BYTES),
    FIELD(pb_log, truncated, PB_K_BOOL, OPT, 0),
    FIELD(pb_log, time_us, PB_K_U64, OPT, 0),
};
static const pb_field test_req_f[] = {
    FIELD(pb_test_req, req, PB_K_U64, REQ, 0),
    FIELD(pb_test_req, filter, PB_K_STR, OPT, PB_MAX_NAME_BYTES),
    FIELD(pb_test_req, runtime_id, PB_K_U64, OPT, 0),
    FIELD(pb_test_req, seq, PB_K_U64, OPT, 0),
};
static const pb_field test_case_f[] = {
    FIELD(pb_test_case, name, PB_K_STR, REQ, PB_MAX_NAME_BYTES),
    FIELD(pb_test_case, ok, PB_K_BOOL, REQ, 0),
    FIELD(pb_test_case, message, PB_K_STR, OPT, PB_MAX_MESSAGE_BYTES),
    FIELD(pb_test_case, us, PB_K_U64, OPT, 0),
    ENUMF(pb_test_case, status, OPT, pb_test_status_names, PB_N_TEST_STATUSES),
    FIELD(pb_test_case, file, PB_K_STR, OPT, PB_MAX_PATH_BYTES),
    FIELD(pb_test_case, line, PB_K_U32, OPT, 0),
    FIELD(pb_test_case, var, PB_K_STR, OPT, PB_MAX_NAME_BYTES),
    FIELD(pb_test_case, var_seq, PB_K_U64, OPT, 0),
};
static const pb_obj test_case_o = OBJ("test case", pb_test_case, test_case_f);
static const pb_field test_result_f[] = {
    FIELD(pb_test_result, req, PB_K_U64, REQ, 0),
    FIELD(pb_test_result, runtime_id, PB_K_U64, OPT, 0),
    FIELD(pb_test_result, seq, PB_K_U64, OPT, 0),
    ARRAYF(pb_test_result, results, n_results, test_case_o, PB_MAX_TESTS),
};
static const pb_field peer_f[] = {
    FIELD(pb_peer, id, PB_K_U64, REQ, 0),
    FIELD(pb_peer, name, PB_K_STR, REQ, PB_MAX_NAME_BYTES),
    ENUMF(pb_peer, role, REQ, pb_role_names, PB_N_ROLES),
    FIELD(pb_peer, client, PB_K_STR, OPT, PB_MAX_CLIENT_BYTES),
    ENUMF(pb_peer, last_ack, OPT, pb_ack_state_names, PB_N_ACK_STATES),
    FIELD(pb_peer, last_seq, PB_K_U64, OPT, 0),
    FIELD(pb_peer, skew_us, PB_K_I64, OPT, 0),
    FIELD(pb_peer, mem_bytes, PB_K_U64, OPT, 0),
    FIELD(pb_peer, unc_us, PB_K_U64, OPT, 0),
    DEVICE_FIELDS(pb_peer),
};
static const pb_obj peer_o = OBJ("peer", pb_peer, peer_f);
static const pb_field peers_f[] = {
    ENUMF(pb_peers, event, REQ, pb_peers_event_names, PB_N_PEERS_EVENTS),
    ARRAYF(pb_peers, peers, n_peers, peer_o, PB_MAX_PEERS),
};
static const pb_field room_f[] = {
    FIELD(pb_room, tempo_bpm, PB_K_F64, OPT, 0),
    FIELD(pb_room, quantum, PB_K_U32, OPT, 64),
    FIELD(pb_room, lead_us, PB_K_U64, OPT, 0),
};
static const pb_field snapshot_req_f[] = {
    FIELD(pb_snapshot_req, req, PB_K_U64, REQ, 0),
    FIELD(pb_snapshot_req, at_us, PB_K_U64, OPT, 0),
    FIELD(pb_snapshot_req, runtime_id, PB_K_U64, OPT, 0),
    FIELD(pb_snapshot_req, editor_id, PB_K_U64, OPT, 0),
};
static const pb_field snapshot_f[] = {
    FIELD(pb_snapshot, req, PB_K_U64, REQ, 0),
    FIELD(pb_snapshot, editor_id, PB_K_U64, REQ, 0),
    FIELD(pb_snapshot, runtime_id, PB_K_U64, OPT, 0),
    FIELD(pb_snapshot, seq, PB_K_U64, OPT, 0),
    FIELD(pb_snapshot, at_us, PB_K_U64, OPT, 0),
    FIELD(pb_snapshot, width, PB_K_U32, OPT, PB_MAX_CANVAS_SIDE),
    FIELD(pb_snapshot, height, PB_K_U32, OPT, PB_MAX_CANVAS_SIDE),
    FIELD(pb_snapshot, png, PB_K_BIN, OPT, PB_MAX_PNG_BYTES),
    FIELD(pb_snapshot, error, PB_K_STR, OPT, PB_MAX_MESSAGE_BYTES),
};
static const pb_field log_req_f[] = {
    FIELD(pb_log_req, req, PB_K_U64, REQ, 0),
    FIELD(pb_log_req, runtime_id, PB_K_U64, OPT, 0),
};
static const pb_field log_end_f[] = {
    FIELD(pb_log_end, req, PB_K_U64, REQ, 0),
    FIELD(pb_log_end, count, PB_K_U32, OPT, 0),
    FIELD(pb_log_end, dropped, PB_K_U64, OPT, 0),
};
static const pb_field bundle_f[] = {
    FIELD(pb_bundle, room, PB_K_STR, REQ, PB_MAX_NAME_BYTES),
    FIELD(pb_bundle, key, PB_K_HASH, REQ, 0),
    FIELD(pb_bundle, count, PB_K_U64, REQ, 0),
    FIELD(pb_bundle, head_hash, PB_K_HASH, REQ, 0),
    FIELD(pb_bundle, epoch, PB_K_U64, OPT, 0),
    FIELD(pb_bundle, exported_us, PB_K_U64, OPT, 0),
    FIELD(pb_bundle, tempo_bpm, PB_K_F64, OPT, 0),
    FIELD(pb_bundle, quantum, PB_K_U32, OPT, 64),
};

static const pb_field buffer_info_f[] = {
    FIELD(pb_buffer_info, id, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_info, name, PB_K_STR, REQ, PB_MAX_NAME_BYTES),
    ENUMF(pb_buffer_info, lang, REQ, pb_lang_names, PB_N_LANGS),
};
static const pb_obj buffer_info_o =
    OBJ("buffer", pb_buffer_info, buffer_info_f);
static const pb_field buffers_f[] = {
    ARRAYF(pb_buffers, buffers, n_buffers, buffer_info_o, PB_MAX_BUFFERS),
    FIELD(pb_buffers, req, PB_K_U64, OPT, 0),
    FIELD(pb_buffers, peer, PB_K_U64, OPT, 0),
};
static const pb_field buffer_op_f[] = {
    FIELD(pb_buffer_op, req, PB_K_U64, REQ, 0),
    ENUMF(pb_buffer_op, op, REQ, pb_buffer_op_names, PB_N_BUFFER_OPS),
    FIELD(pb_buffer_op, buffer, PB_K_U64, OPT, 0),
    FIELD(pb_buffer_op, name, PB_K_STR, OPT, PB_MAX_NAME_BYTES),
    ENUMF(pb_buffer_op, lang, OPT, pb_lang_names, PB_N_LANGS),
};
static const pb_field buffer_data_f[] = {
    FIELD(pb_buffer_data, data, PB_K_BIN, REQ, PB_MAX_BUFFER_BYTES),
};
static const pb_obj buffer_data_o =
    OBJ("stored update", pb_buffer_data, buffer_data_f);
static const pb_field buffer_sync_f[] = {
    FIELD(pb_buffer_sync, buffer, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_sync, useq, PB_K_U64, OPT, 0),
    FIELD(pb_buffer_sync, more, PB_K_BOOL, OPT, 0),
    FIELD(pb_buffer_sync, compact, PB_K_BOOL, OPT, 0),
    ARRAYF(pb_buffer_sync, updates, n_updates, buffer_data_o,
           PB_MAX_BUFFER_SYNC_ITEMS),
};
static const pb_field buffer_update_f[] = {
    FIELD(pb_buffer_update, buffer, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_update, data, PB_K_BIN, REQ, PB_MAX_BUFFER_BYTES),
    FIELD(pb_buffer_update, req, PB_K_U64, OPT, 0),
    FIELD(pb_buffer_update, useq, PB_K_U64, OPT, 0),
    FIELD(pb_buffer_update, peer, PB_K_U64, OPT, 0),
};
static const pb_field buffer_ack_f[] = {
    FIELD(pb_buffer_ack, buffer, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_ack, req, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_ack, useq, PB_K_U64, OPT, 0),
    FIELD(pb_buffer_ack, compact, PB_K_BOOL, OPT, 0),
};
static const pb_field buffer_compact_f[] = {
    FIELD(pb_buffer_compact, buffer, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_compact, req, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_compact, useq, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_compact, data, PB_K_BIN, REQ, PB_MAX_BUFFER_BYTES),
};
static const pb_field buffer_aware_f[] = {
    FIELD(pb_buffer_aware, buffer, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_aware, data, PB_K_BIN, REQ, PB_MAX_AWARENESS_BYTES),
    FIELD(pb_buffer_aware, peer, PB_K_U64, OPT, 0),
};
static const pb_field buffer_eval_f[] = {
    FIELD(pb_buffer_eval, buffer, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_eval, seq, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_eval, peer, PB_K_U64, REQ, 0),
    FIELD(pb_buffer_eval, author, PB_K_STR, REQ, PB_MAX_NAME_BYTES),
    FIELD(pb_buffer_eval, start, PB_K_BIN, OPT, PB_MAX_RELPOS_BYTES),
    FIELD(pb_buffer_eval, end, PB_K_BIN, OPT, PB_MAX_RELPOS_BYTES),
};

static const pb_obj frames[PB_T_COUNT_] = {
    [PB_T_HELLO] = OBJ("hello frame", pb_hello, hello_f),
    [PB_T_WELCOME] = OBJ("welcome frame", pb_welcome, welcome_f),
    [PB_T_ERROR] = OBJ("error frame", pb_error, error_f),
    [PB_T_EVAL] = OBJ("eval frame", pb_eval, eval_f),
    [PB_T_DIAG] = OBJ("diag frame", pb_diag, diag_f),
    [PB_T_PATCH] = OBJ("patch frame", pb_patch, patch_f),
    [PB_T_ACK] = OBJ("ack frame", pb_ack, ack_f),
    [PB_T_PING] = OBJ("ping frame", pb_ping, ping_f),
    [PB_T_PONG] = OBJ("pong frame", pb_pong, pong_f),
    [PB_T_HISTORY_REQ] =
        OBJ("history_req frame", pb_history_req, history_req_f),
    [PB_T_HISTORY] = OBJ("history frame", pb_history, history_f),
    [PB_T_LOG] = OBJ("log frame", pb_log, log_f),
    [PB_T_TEST_REQ] = OBJ("test_req frame", pb_test_req, test_req_f),
    [PB_T_TEST_RESULT] =
        OBJ("test_result frame", pb_test_result, test_result_f),
    [PB_T_PEERS] = OBJ("peers frame", pb_peers, peers_f),
    [PB_T_ROOM] = OBJ("room frame", pb_room, room_f),
    [PB_T_SNAPSHOT_REQ] =
        OBJ("snapshot_req frame", pb_snapshot_req, snapshot_req_f),
    [PB_T_SNAPSHOT] = OBJ("snapshot frame", pb_snapshot, snapshot_f),
    [PB_T_LOG_REQ] = OBJ("log_req frame", pb_log_req, log_req_f),
    [PB_T_LOG_END] = OBJ("log_end frame", pb_log_end, log_end_f),
    [PB_T_HEAD] = OBJ("head frame", pb_head_frame, head_f),
    [PB_T_BUFFERS] = OBJ("buffers frame", pb_buffers, buffers_f),
    [PB_T_BUFFER_OP] = OBJ("buffer_op frame", pb_buffer_op, buffer_op_f),
    [PB_T_BUFFER_SYNC] =
        OBJ("buffer_sync frame", pb_buffer_sync, buffer_sync_f),
    [PB_T_BUFFER_UPDATE] =
        OBJ("buffer_update frame", pb_buffer_update, buffer_update_f),
    [PB_T_BUFFER_ACK] = OBJ("buffer_ack frame", pb_buffer_ack, buffer_ack_f),
    [PB_T_BUFFER_COMPACT] =
        OBJ("buffer_compact frame", pb_buffer_compact, buffer_compact_f),
    [PB_T_BUFFER_AWARE] =
        OBJ("buffer_aware frame", pb_buffer_aware, buffer_aware_f),
    [PB_T_BUFFER_EVAL] =
        OBJ("buffer_eval frame", pb_buffer_eval, buffer_eval_f),
    [PB_T_BUNDLE] = OBJ("bundle frame", pb_bundle, bundle_f),
};

static const char *const type_names[PB_T_COUNT_] = {
    "",
    "hello",
    "welcome",
    "error",
    "eval",
    "diag",
    "patch",
    "ack",
    "ping",
    "pong",
    "history_req",
    "history",
    "log",
    "test_req",
    "test_result",
    "peers",
    "room",
    "snapshot_req",
    "snapshot",
    "log_req",
    "log_end",
    "head",
    "buffers",
    "buffer_op",
    "buffer_sync",
    "buffer_update",
    "buffer_ack",
    "buffer_compact",
    "buffer_aware",
    "buffer_eval",
    "bundle",
};

const pb_obj *pb_frame_obj(pb_type t)
{
    return t > PB_T_NONE && t < PB_T_COUNT_ ? &frames[t] : NULL;
}

const char *pb_type_name(pb_type t)
{
    return t > PB_T_NONE && t < PB_T_COUNT_ ? type_names[t] : "";
}

static pb_err read_header(const msgpack_object *map, pb_type *type,
                          pb_errmsg *why)
{
    const msgpack_object *v = NULL, *t = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            continue; /* reported by pb_obj_decode */
        pb_str key = {kv->key.via.str.ptr, kv->key.via.str.size};
        const msgpack_object **slot = pb_str_eq(key, "v")   ? &v
                                      : pb_str_eq(key, "t") ? &t
                                                            : NULL;
        if (!slot)
            continue;
        if (*slot)
            return pb_fail(why, PB_ERR_DUPLICATE_FIELD,
                           "frame: field \"%.*s\" appears twice", 1, key.ptr);
        *slot = &kv->val;
    }
    if (!v)
        return pb_fail(why, PB_ERR_MISSING_FIELD,
                       "frame: required field \"v\" (protocol version) is "
                       "missing");
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "frame: field \"v\" must be unsigned int, got %s",
                       pb_msgpack_type_name(v->type));
    if (v->via.u64 != PB_PROTOCOL_VERSION)
        return pb_fail(why, PB_ERR_VERSION,
                       "frame: protocol version %llu is not supported (this "
                       "build speaks %u)",
                       (unsigned long long)v->via.u64, PB_PROTOCOL_VERSION);
    if (!t)
        return pb_fail(why, PB_ERR_MISSING_FIELD,
                       "frame: required field \"t\" (frame type) is missing");
    if (t->type != MSGPACK_OBJECT_STR)
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "frame: field \"t\" must be str, got %s",
                       pb_msgpack_type_name(t->type));
    pb_str name = {t->via.str.ptr, t->via.str.size};
    for (int k = PB_T_NONE + 1; k < PB_T_COUNT_; k++) {
        if (pb_str_eq(name, type_names[k])) {
            *type = (pb_type)k;
            return PB_OK;
        }
    }
    return pb_fail(
        why, PB_ERR_UNKNOWN_TYPE, "frame: unknown frame type \"%.*s\"",
        (int)(name.len > 40 ? 40 : name.len), name.ptr ? name.ptr : "");
}

pb_err pb_frame_decode(const uint8_t *buf, size_t len, pb_frame *out,
                       pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    if (len > PB_MAX_FRAME_BYTES)
        return pb_fail(why, PB_ERR_TOO_BIG, "frame: %zu bytes, at most %u", len,
                       PB_MAX_FRAME_BYTES);
    if (len == 0)
        return pb_fail(why, PB_ERR_TRUNCATED, "frame: empty input");
    msgpack_object obj;
    msgpack_zone *zone = NULL;
    pb_err e =
        pb_unpack(buf, len, PB_MAX_FRAME_OBJECTS, &obj, &zone, "frame", why);
    if (e)
        return e;
    if (obj.type != MSGPACK_OBJECT_MAP) {
        e = pb_fail(why, PB_ERR_NOT_A_MAP, "frame: must be a map, got %s",
                    pb_msgpack_type_name(obj.type));
        goto fail;
    }
    pb_type type = PB_T_NONE;
    if ((e = read_header(&obj, &type, why)))
        goto fail;
    out->type = type;
    if ((e = pb_obj_decode(&frames[type], &obj, &out->hello, zone, true,
                           frames[type].what, why)))
        goto fail;
    out->priv_ = zone;
    return PB_OK;
fail:
    msgpack_zone_free(zone);
    memset(out, 0, sizeof *out);
    return e;
}

void pb_frame_free(pb_frame *f)
{
    if (!f)
        return;
    if (f->priv_)
        msgpack_zone_free(f->priv_);
    memset(f, 0, sizeof *f);
}

pb_err pb_frame_encode(const pb_frame *f, pb_buf *out, pb_errmsg *why)
{
    if (f->type <= PB_T_NONE || f->type >= PB_T_COUNT_)
        return pb_fail(why, PB_ERR_UNKNOWN_TYPE, "frame: cannot encode type %d",
                       (int)f->type);
    const pb_obj *desc = &frames[f->type];
    msgpack_packer pk;
    pb_writer w;
    pb_writer_start(&w, out, PB_MAX_FRAME_BYTES);
    msgpack_packer_init(&pk, &w, pb_writer_write);
    msgpack_pack_map(&pk, 2 + pb_obj_count(desc, &f->hello));
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_uint32(&pk, PB_PROTOCOL_VERSION);
    msgpack_pack_str_with_body(&pk, "t", 1);
    const char *name = type_names[f->type];
    msgpack_pack_str_with_body(&pk, name, strlen(name));
    pb_err e = pb_obj_encode_fields(desc, &f->hello, &pk, desc->what, why);
    if (!e && w.err)
        e = pb_fail(why, w.err, "%s: encoding failed: %s (limit %u bytes)",
                    desc->what, pb_strerror(w.err), PB_MAX_FRAME_BYTES);
    if (e)
        out->len = 0;
    return e;
}
