// pb_protocol.js — GENERATED from protocol/pb_protocol.h by
// `pb_reference js --write runtime/pb_protocol.js`; do not edit (the test
// protocol_js fails when it differs from what the code produces).
// The wire numbers the runtime host and the pages use, by their C names:
// limits, error codes (docs/PROTOCOL.md § Error codes), log levels and
// test statuses.

// Limits and sizes
export const PB_PROTOCOL_VERSION = 1; // value of "v" in every frame
export const PB_STATEMENT_VERSION = 1; // first element of a statement of definitions
export const PB_STATEMENT_VERSION_EXPR = 2; // first element of an expression's statement
export const PB_STATEMENT_VERSION_ORIGIN = 3; // first element of a replayed or restored patch's statement
export const PB_MAX_FRAME_BYTES = 2097152; // bytes in one encoded frame
export const PB_MAX_FRAME_OBJECTS = 16384; // msgpack values in one frame
export const PB_MAX_NESTING = 8; // depth of nested arrays/maps
export const PB_MAX_MODULE_BYTES = 1048576; // bytes in one side module
export const PB_MAX_SOURCE_BYTES = 262144; // bytes of source in one eval
export const PB_MAX_STATEMENT_BYTES = 65536; // bytes in one encoded statement
export const PB_MAX_SYMBOLS = 256; // vars defined by one patch
export const PB_MAX_NAME_BYTES = 64; // room, user, var names
export const PB_MAX_TYPE_BYTES = 128; // a var's signature string
export const PB_MAX_TOKEN_BYTES = 512; // hello.token
export const PB_MAX_CLIENT_BYTES = 256; // client descriptions
export const PB_MAX_PATH_BYTES = 256; // eval.name
export const PB_MAX_MESSAGE_BYTES = 2048; // error, diag, ack and test messages
export const PB_MAX_LOG_BYTES = 4096; // log.text
export const PB_MAX_DIAGS = 64; // diag.items
export const PB_MAX_HISTORY_ITEMS = 64; // history.items
export const PB_MAX_TESTS = 256; // test_result.results
export const PB_MAX_PEERS = 256; // peers.peers
export const PB_MAX_PNG_BYTES = 1572864; // snapshot.png
export const PB_MAX_CANVAS_SIDE = 8192; // canvas, screen and picture sides, pixels
export const PB_MAX_BUFFER_BYTES = 1048576; // one buffer update or snapshot
export const PB_MAX_BUFFERS = 64; // buffers.buffers
export const PB_MAX_BUFFER_SYNC_ITEMS = 4096; // buffer_sync.updates
export const PB_MAX_AWARENESS_BYTES = 4096; // buffer_aware.data
export const PB_MAX_RELPOS_BYTES = 128; // a position in a buffer (eval.start, .end)
export const PB_MIN_TEMPO_BPM = 1; // room.tempo_bpm when not 0
export const PB_MAX_TEMPO_BPM = 999; // room.tempo_bpm
export const PB_MAX_LEAD_US = 10000000; // room.lead_us, and any lead the relay chooses
export const PB_MAX_QUANTUM_US = 60000000; // one quantum: quantum x 60 / tempo_bpm seconds
export const PB_MAX_APPLY_AHEAD_US = 70000000; // apply_us - created_us; runtimes refuse a patch due later than this from now
export const PB_MAX_HEAD_BYTES = 512; // bytes in one encoded head statement
export const PB_HEAD_VERSION = 1; // second element of every head statement
export const PB_HEAD_EVERY_US = 5000000; // the relay signs each room's head at least this often
export const PB_HEAD_STALE_US = 10000000; // a runtime whose freshest signed head is older is stale
export const PB_SILENT_US = 15000000; // a runtime that received nothing for this long reconnects
export const PB_HASH_BYTES = 32; // BLAKE2b-256 hash
export const PB_SIG_BYTES = 64; // ed25519 signature
export const PB_PUBLICKEY_BYTES = 32; // ed25519 public key

// Error codes (pb_err): on the wire in error.code and ack.code
export const PB_OK = 0; // ok
export const PB_ERR_NOMEM = 1; // out of memory
export const PB_ERR_TRUNCATED = 2; // truncated input
export const PB_ERR_MALFORMED = 3; // malformed msgpack
export const PB_ERR_TOO_BIG = 4; // too big
export const PB_ERR_NOT_A_MAP = 5; // not a map
export const PB_ERR_VERSION = 6; // unsupported version
export const PB_ERR_UNKNOWN_TYPE = 7; // unknown frame type
export const PB_ERR_MISSING_FIELD = 8; // missing field
export const PB_ERR_FIELD_TYPE = 9; // wrong field type
export const PB_ERR_FIELD_RANGE = 10; // field out of range
export const PB_ERR_DUPLICATE_FIELD = 11; // duplicate field
export const PB_ERR_BAD_UTF8 = 12; // invalid UTF-8
export const PB_ERR_NOT_CANONICAL = 13; // statement not in canonical form
export const PB_ERR_BAD_SIGNATURE = 20; // bad signature
export const PB_ERR_WRONG_KEY = 21; // signed by another key
export const PB_ERR_HASH_MISMATCH = 22; // hash mismatch
export const PB_ERR_CHAIN_GAP = 23; // chain gap
export const PB_ERR_CHAIN_FORK = 24; // chain fork
export const PB_ERR_CHAIN_REPLAY = 25; // chain replay
export const PB_ERR_WRONG_ROOM = 26; // wrong room
export const PB_ERR_BUF_TOO_SMALL = 27; // buffer too small
export const PB_ERR_AUTH_MALFORMED = 40; // malformed token
export const PB_ERR_AUTH_BAD_MAC = 41; // token MAC does not verify
export const PB_ERR_AUTH_EXPIRED = 42; // token expired
export const PB_ERR_AUTH_WRONG_ROOM = 43; // token is for another room
export const PB_ERR_AUTH_UNKNOWN_ROLE = 44; // token has an unknown role
export const PB_ERR_AUTH_TIMEOUT = 45; // no hello in time
export const PB_ERR_FORBIDDEN = 46; // not allowed for this role
export const PB_ERR_RATE_LIMITED = 47; // rate limited
export const PB_ERR_ROOM_FULL = 48; // room full
export const PB_ERR_SLOW_CONSUMER = 49; // slow consumer
export const PB_ERR_UNEXPECTED = 50; // unexpected frame
export const PB_ERR_REPLACED = 51; // replaced by a new connection
export const PB_ERR_AUTH_REVOKED = 52; // token revoked
export const PB_ERR_COMPILE = 60; // compile error
export const PB_ERR_COMPILER_DOWN = 61; // compiler unavailable
export const PB_ERR_PREPARE = 62; // prepare failed
export const PB_ERR_TRAP = 63; // trap
export const PB_ERR_IO = 70; // i/o error
export const PB_ERR_INTERNAL = 71; // internal error

// Log levels (pb_log_level), as rt_session_log takes them
export const PB_LOG_INFO = 1; // "info"
export const PB_LOG_WARN = 2; // "warn"
export const PB_LOG_ERROR = 3; // "error"
export const PB_LOG_TRAP = 4; // "trap"

// Test statuses (pb_test_status): a test case's "status"
export const PB_TEST_PASS = 1; // "pass"
export const PB_TEST_FAIL = 2; // "fail"
export const PB_TEST_TRAP = 3; // "trap"
export const PB_TEST_TIMEOUT = 4; // "timeout"
