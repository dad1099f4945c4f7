/* internal.h — private helpers shared by the files of protocol/. Nothing
 * outside protocol/ includes this; the public surface is pb_protocol.h. */
#ifndef PB_PROTOCOL_INTERNAL_H
#define PB_PROTOCOL_INTERNAL_H

#include "pb_protocol.h"

#include <msgpack.h>

/* Walks exactly one msgpack value spanning all of buf[0..len) without
 * allocating, and rejects truncation, trailing bytes, reserved bytes, more
 * than max_objects values or nesting deeper than max_depth. Run before
 * msgpack-c's unpacker, which allocates a container's elements up front from
 * its declared count. */
pb_err pb_scan(const uint8_t *buf, size_t len, uint32_t max_objects,
               uint32_t max_depth, pb_errmsg *why) PB_WUR;

/* Scans then unpacks buf into obj, whose memory lives in *zone (released by
 * msgpack_zone_free). `what` names the input in messages. */
pb_err pb_unpack(const uint8_t *buf, size_t len, uint32_t max_objects,
                 msgpack_object *obj, msgpack_zone **zone, const char *what,
                 pb_errmsg *why) PB_WUR;

/* Decodes bytes that must be the canonical encoding of a value (a
 * statement, a head): unpacks buf into a zone (as pb_unpack), has take()
 * fill *out from the msgpack object, then encode() *out again and
 * requires the very same bytes (PB_ERR_NOT_CANONICAL otherwise). On
 * success *zone holds the memory *out points into; on failure nothing is
 * left allocated (the caller clears *out). */
typedef pb_err (*pb_take_fn)(const msgpack_object *o, msgpack_zone *zone,
                             void *out, pb_errmsg *why);
typedef pb_err (*pb_encode_fn)(const void *out, pb_buf *b, pb_errmsg *why);
pb_err pb_canonical_decode(const uint8_t *buf, size_t len, uint32_t max_objects,
                           const char *what, pb_take_fn take,
                           pb_encode_fn encode, void *out, msgpack_zone **zone,
                           pb_errmsg *why) PB_WUR;

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool pb_is_utf8(const char *s, size_t len);

const char *pb_msgpack_type_name(msgpack_object_type t);

/* ---- Table-driven objects (fields.c) ------------------------------------
 * A frame's fields (and the elements of its arrays) are described by
 * tables; one decoder and one encoder walk them, so the rules of
 * docs/PROTOCOL.md § Frames hold for every frame alike. */
typedef enum pb_kind {
    PB_K_U64,   /* uint64_t; msgpack positive int */
    PB_K_U32,   /* uint32_t; msgpack positive int <= UINT32_MAX (or max) */
    PB_K_I64,   /* int64_t; msgpack int */
    PB_K_BOOL,  /* bool */
    PB_K_F64,   /* double; msgpack float or int, finite */
    PB_K_STR,   /* pb_str; UTF-8, len <= max */
    PB_K_BIN,   /* pb_bytes; len <= max */
    PB_K_SIG,   /* pb_bytes; exactly PB_SIG_BYTES */
    PB_K_HASH,  /* uint8_t[32] copied; exactly 32 bytes */
    PB_K_ENUM,  /* int-sized enum; msgpack str, one of names[1..max] */
    PB_K_ARRAY, /* pointer at off, uint32_t count at count_off */
} pb_kind;

typedef struct pb_obj pb_obj;

typedef struct pb_field {
    const char *key;
    pb_kind kind;
    bool required;
    uint16_t off;
    uint16_t count_off;       /* PB_K_ARRAY only */
    uint32_t max;             /* bytes, max value, names, or elements */
    const char *const *names; /* PB_K_ENUM: names[1..max] */
    const pb_obj *elem;       /* PB_K_ARRAY: element description */
} pb_field;

struct pb_obj {
    const char *what; /* "eval frame", "diag item" */
    size_t size;      /* sizeof the C struct */
    const pb_field *fields;
    uint32_t n_fields;
};

/* Decodes map into dst (sizeof desc->size, zeroed by the caller). Arrays
 * are allocated in zone. Keys "v" and "t" are skipped when skip_vt. */
pb_err pb_obj_decode(const pb_obj *desc, const msgpack_object *map, void *dst,
                     msgpack_zone *zone, bool skip_vt, const char *path,
                     pb_errmsg *why) PB_WUR;

/* Number of fields the encoder will write for src. */
uint32_t pb_obj_count(const pb_obj *desc, const void *src);
/* Writes src's fields (without the map header) after checking limits. */
pb_err pb_obj_encode_fields(const pb_obj *desc, const void *src,
                            msgpack_packer *pk, const char *path,
                            pb_errmsg *why) PB_WUR;

/* The field table of a frame type (NULL if out of range); for tests and the
 * doc generator. */
const pb_obj *pb_frame_obj(pb_type t);

extern const char *const pb_role_names[];
extern const char *const pb_lang_names[];
extern const char *const pb_ack_state_names[];
extern const char *const pb_severity_names[];
extern const char *const pb_log_level_names[];
extern const char *const pb_peers_event_names[];
extern const char *const pb_history_mode_names[];
extern const char *const pb_patch_kind_names[];
extern const char *const pb_test_status_names[];
extern const char *const pb_buffer_op_names[];
#define PB_N_ROLES         4u
#define PB_N_LANGS         2u
#define PB_N_ACK_STATES    3u
#define PB_N_SEVERITIES    3u
#define PB_N_LOG_LEVELS    4u
#define PB_N_PEERS_EVENTS  4u
#define PB_N_HISTORY_MODES 2u
#define PB_N_PATCH_KINDS   1u
/* PB_KIND_DEFS (0) if s names no kind. */
pb_patch_kind pb_patch_kind_parse(pb_str s);
#define PB_N_TEST_STATUSES 4u
#define PB_N_BUFFER_OPS    3u

/* protocol/abi/api.list as a table (api_list.c, generated by
 * protocol/CMakeLists.txt): what pb_abi_has looks in. */
typedef struct pb_abi_entry {
    const char *name;
    bool is_data;
} pb_abi_entry;
extern const pb_abi_entry pb_abi_list[];
extern const size_t pb_abi_list_len;

#endif
