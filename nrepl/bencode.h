/* bencode.h — private to nrepl/: bencode, the encoding of nREPL messages
 * (integers i42e, byte strings 5:hello, lists l…e, dictionaries d…e with
 * string keys), read from an untrusted TCP stream and written back.
 *
 * Reading happens in two steps. ben_scan finds where the first complete
 * value of a buffer ends, resumably and without allocating, so that a client
 * that dribbles a message byte by byte costs linear time, and a value that
 * is malformed, nested too deep or bigger than the limit is refused at the
 * byte where it goes wrong. ben_parse then builds the tree of that one
 * value in an arena; its strings point into the buffer.
 *
 * Writing: build a tree of ben values (ben_dict_put and friends) in an
 * arena and ben_encode it; dictionary keys are written sorted, as bencode
 * requires. Not thread-safe per arena; no global state. */
#ifndef PB_NREPL_BENCODE_H
#define PB_NREPL_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BEN_MAX_DEPTH 32u /* nested lists and dictionaries */

typedef enum ben_kind { BEN_INT, BEN_STR, BEN_LIST, BEN_DICT } ben_kind;

typedef struct ben {
    ben_kind kind;
    int64_t i;          /* BEN_INT */
    const char *s;      /* BEN_STR: not NUL-terminated */
    uint32_t len;       /* BEN_STR: bytes */
    struct ben **items; /* LIST: n values; DICT: k v k v … (2n) */
    uint32_t n, cap;    /* LIST: values; DICT: pairs */
} ben;

/* All the memory of a parsed or built tree; ben_arena_free frees it at
 * once (a zeroed arena is empty). */
typedef struct ben_arena {
    struct ben_chunk *head;
    bool is_oom; /* an allocation failed: what was built is unusable */
} ben_arena;

void *ben_alloc(ben_arena *a, size_t n);
void ben_arena_free(ben_arena *a);

/* ---- reading ------------------------------------------------------------- */

/* The resumable scan of one value: zero it before the first call. */
typedef struct ben_scanner {
    size_t pos;                       /* next byte to look at */
    size_t token;                     /* where the token being read started */
    uint32_t depth;                   /* open lists and dictionaries */
    uint64_t str_left;                /* bytes of a string still to skip */
    bool in_str;                      /* inside a string's bytes */
    uint8_t frame[BEN_MAX_DEPTH + 1]; /* what depth d is: a list, or a
                                         dictionary expecting a key or a
                                         value next */
} ben_scanner;

typedef enum ben_status {
    BEN_MORE = 0,  /* no complete value yet: read more bytes */
    BEN_DONE = 1,  /* a value ends at *end */
    BEN_ERROR = -1 /* malformed (message in err, naming the offset) */
} ben_status;

/* Scans buf[0..len) from where s left off; buf must hold the same bytes as
 * at the last call, plus any that arrived since. max_bytes bounds the value:
 * more without its end is an error. */
ben_status ben_scan(ben_scanner *s, const uint8_t *buf, size_t len,
                    size_t max_bytes, size_t *end, char *err, size_t err_len);

/* Builds the tree of the one complete value in buf[0..len) (as found by
 * ben_scan). Returns NULL out of memory. Strings point into buf. */
ben *ben_parse(ben_arena *a, const uint8_t *buf, size_t len);

/* A dictionary's value for key, or NULL. */
const ben *ben_get(const ben *dict, const char *key);
/* A string value as a NUL-terminated copy in the arena ("" if v is not a
 * string or absent), and whether it is one. */
const char *ben_cstr(ben_arena *a, const ben *v);
bool ben_is_str(const ben *v);

/* ---- writing ------------------------------------------------------------- */

ben *ben_new_dict(ben_arena *a);
ben *ben_new_list(ben_arena *a);
ben *ben_new_str(ben_arena *a, const char *s, size_t len); /* copies s */
ben *ben_new_cstr(ben_arena *a, const char *s);
ben *ben_new_int(ben_arena *a, int64_t v);
/* Adds to a list, or sets key in a dictionary (replacing its value). */
void ben_push(ben_arena *a, ben *list, ben *v);
void ben_put(ben_arena *a, ben *dict, const char *key, ben *v);
void ben_put_cstr(ben_arena *a, ben *dict, const char *key, const char *v);

/* Encodes v; returns a malloc'd buffer (*len bytes) or NULL out of memory.
 * The caller frees it. */
uint8_t *ben_encode(const ben *v, size_t *len);

#endif /* PB_NREPL_BENCODE_H */
