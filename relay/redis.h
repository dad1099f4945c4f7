/* redis.h — private to relay/: a Redis connection for a signer or an edge
 * (docs/ARCHITECTURE.md § More than one relay), and the envelopes they
 * exchange through it.
 *
 * Threads: hiredis runs in a thread of its own (redis.c). Every function
 * here is called on the relay's event loop; what Redis sends comes back as
 * events taken with relay_redis_take, after the thread has woken the loop
 * with lws_cancel_service. */
#ifndef PB_RELAY_REDIS_H
#define PB_RELAY_REDIS_H

#include "pb_protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws_context;

/* A value Redis answered, copied off hiredis' reply (which hiredis frees
 * when its callback returns). type is hiredis' REDIS_REPLY_*. */
typedef struct relay_rval {
    int type;
    long long integer;
    char *str; /* STRING, STATUS, ERROR: len bytes, NUL after them */
    size_t len;
    struct relay_rval **elem; /* ARRAY */
    size_t n;
} relay_rval;

typedef enum relay_redis_kind {
    RELAY_REDIS_UP,      /* (re)connected and subscribed */
    RELAY_REDIS_DOWN,    /* the connection was lost; retrying */
    RELAY_REDIS_REFUSED, /* why it is not up (data: text), said once per
                          * reason: a wrong or missing password, a refused
                          * or lost connection; it keeps retrying */
    RELAY_REDIS_MESSAGE, /* on a subscribed channel */
    RELAY_REDIS_REPLY,   /* to a command; reply NULL: Redis went away */
} relay_redis_kind;

/* The longest value a relay takes from Redis (a message's payload, a
 * string in a reply): an envelope's fields and a frame. Longer ones are
 * dropped before they are copied (a reply's become errors). */
#define RELAY_REDIS_MAX_VALUE_BYTES (PB_MAX_FRAME_BYTES + 4096u)

typedef struct relay_redis_event relay_redis_event;
/* Called on the event loop with a command's reply: NULL if the connection
 * was lost after the command was written (it may or may not have run); an
 * error reply RELAY_REDIS_UNSENT if it was never written (Redis was
 * unreachable). */
#define RELAY_REDIS_UNSENT "not sent: Redis is unreachable"
typedef void (*relay_redis_fn)(void *ctx, uint64_t tag, const relay_rval *r);

struct relay_redis_event {
    relay_redis_kind kind;
    char channel[160]; /* MESSAGE */
    uint8_t *data;     /* MESSAGE: the payload; REFUSED: text, NUL after */
    size_t len;
    relay_rval *reply; /* REPLY */
    relay_redis_fn fn; /* REPLY */
    void *ctx;
    uint64_t tag;
    relay_redis_event *next;
    struct relay_redis *from; /* counts held bytes in its inbox until freed */
    size_t held;
};

typedef struct relay_redis relay_redis;

/* Parses url (redis://[[USER]:PASSWORD@]HOST[:PORT], %XX-decoded) and
 * starts the thread, which connects (and reconnects, 200 ms to 2 s apart),
 * sends AUTH first on each connection when there is a password (password,
 * NULL: the URL's, if any), and subscribes to channels and patterns ("p:"
 * before a pattern), NULL-terminated, copied. NULL with a message naming
 * the URL if it is not one. */
relay_redis *relay_redis_start(const char *url, const char *password,
                               const char *const *subs, struct lws_context *ctx,
                               pb_errmsg *why);
/* Sends a command (argv of argc strings of lens bytes, copied); fn (may be
 * NULL) gets its reply as an event. */
void relay_redis_command(relay_redis *r, relay_redis_fn fn, void *ctx,
                         uint64_t tag, int argc, const char *const *argv,
                         const size_t *lens);
/* PUBLISH channel e (an envelope, below); fn as for relay_redis_command
 * (its reply is how many subscribers got it). An envelope that ran out of
 * memory is not sent: fn gets NULL at once. */
struct relay_env;
void relay_redis_publish(relay_redis *r, const char *channel,
                         const struct relay_env *e, relay_redis_fn fn,
                         void *ctx, uint64_t tag);
/* Takes the events that arrived, oldest first (NULL: none); free each
 * with relay_redis_event_free (their bytes count against the inbox's
 * bound until then). */
relay_redis_event *relay_redis_take(relay_redis *r);
void relay_redis_event_free(relay_redis_event *e);
/* Whether the connection is up (as of the last event taken). */
bool relay_redis_is_up(const relay_redis *r);
/* The URL, for messages: redis://[USER@]HOST:PORT, never the password. */
const char *relay_redis_url(const relay_redis *r);
/* Stops the thread and frees everything; NULL is allowed. */
void relay_redis_free(relay_redis *r);

/* ---- envelopes ------------------------------------------------------------
 * What signer and edges put in Redis messages: a kind byte, then fields in
 * order: u8, u32 and u64 big-endian, str (u16 length + bytes), and the
 * frame's bytes to the end. Read with bounds checks: Redis is shared, and
 * a bad message is dropped, never trusted past its bytes. */

enum {
    RELAY_ENV_PATCH = 'P',     /* signer -> edges: room, epoch, seq, frame */
    RELAY_ENV_BROADCAST = 'B', /* signer -> edges: room, epoch, role, frame */
    RELAY_ENV_FORWARD = 'F',   /* edge -> signer: a client's frame, MACed */
    RELAY_ENV_CLOSED = 'X',    /* edge -> signer: that client left, MACed */
    RELAY_ENV_OPEN = 'O',      /* edge -> signer: open room (epoch, head),
                                * MACed (relay_env_mac): a room the signer
                                * lacks is made only so */
    RELAY_ENV_FILL = 'L',      /* edge -> signer: room's patches from seq */
    RELAY_ENV_CLIENT = 'C',    /* signer -> edge: frame (or close) to one */
    RELAY_ENV_REVOKED = 'V',   /* signer -> edges: room, name, token id,
                                * signed (relay_env_sign) */
};

typedef struct relay_env {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* out of memory */
} relay_env;

void relay_env_u8(relay_env *e, uint8_t v);
void relay_env_u32(relay_env *e, uint32_t v);
void relay_env_u64(relay_env *e, uint64_t v);
void relay_env_str(relay_env *e, const char *s);
void relay_env_bytes(relay_env *e, const uint8_t *p, size_t n);
void relay_env_free(relay_env *e);
/* Appends the signature of sk over what e holds (at most
 * RELAY_ENV_SIGNED_MAX_BYTES), for edges to check with the signer's key:
 * what a writer to Redis must not be able to say in the signer's name. */
#define RELAY_ENV_SIGNED_MAX_BYTES 1024u
void relay_env_sign(relay_env *e, const uint8_t sk[PB_SECRETKEY_BYTES]);
/* Whether data ends with a signature by pk of the bytes before it
 * (relay_env_sign). */
bool relay_env_signed_by(const uint8_t *data, size_t len,
                         const uint8_t pk[PB_PUBLICKEY_BYTES]) PB_WUR;
/* The same with a MAC (crypto_auth, 32 bytes; any length) with key, the
 * token key that signer and edges share: what only they, not a writer to
 * Redis, can send. A MAC proves who sent it, not when: it may be
 * replayed. */
#define RELAY_ENV_MAC_KEY_BYTES 32u
#define RELAY_ENV_MAC_BYTES     32u
void relay_env_mac(relay_env *e, const uint8_t key[RELAY_ENV_MAC_KEY_BYTES]);
bool relay_env_mac_ok(const uint8_t *data, size_t len,
                      const uint8_t key[RELAY_ENV_MAC_KEY_BYTES]) PB_WUR;

typedef struct relay_env_reader {
    const uint8_t *p;
    size_t left;
    bool bad; /* read past the end, or a string too long */
} relay_env_reader;

uint8_t relay_env_get_u8(relay_env_reader *r);
uint32_t relay_env_get_u32(relay_env_reader *r);
uint64_t relay_env_get_u64(relay_env_reader *r);
/* Copies a str field into out (cap bytes with the NUL). */
void relay_env_get_str(relay_env_reader *r, char *out, size_t cap);

#endif
