/* farm_room.h — a room's devices as `patchbay devices`, `test`, `logs` and
 * `snapshot` see them over one live connection: who is there (the runtimes
 * from the relay's peers frames, with what they said they run on), the
 * room's head seq, and the room clock (from welcome). The four commands
 * share the connection options and this bookkeeping; what they do with it
 * is theirs. Not thread-safe. */
#ifndef PB_CLI_FARM_ROOM_H
#define PB_CLI_FARM_ROOM_H

#include "cli.h"
#include "pb_protocol.h"
#include "pbc.h"

#include <stdio.h>

/* One runtime of the room, as the relay lists it. d's strings point at the
 * arrays beside it. */
typedef struct farm_dev {
    uint64_t id;
    char name[PB_MAX_NAME_BYTES + 1]; /* its token's name */
    char label[PB_MAX_NAME_BYTES + 1];
    char platform[PB_MAX_CLIENT_BYTES + 1];
    char features[PB_MAX_CLIENT_BYTES + 1];
    pb_device d;
    pb_ack_state last_ack;
    uint64_t last_seq;
    int64_t skew_us;
    uint64_t mem_bytes, unc_us;
    bool is_here;     /* false once it left */
    uint64_t left_ms; /* when it left (monotonic ms) */
} farm_dev;

typedef struct farm_room {
    const char *cmd; /* for messages: "test" */
    pbc *c;
    pbc_welcome w;
    farm_dev *devs; /* runtimes, in the order they joined */
    uint32_t n_devs, cap_devs;
    uint64_t head_seq;
    uint64_t room_us, mono_us; /* room clock at welcome, and when */
    bool has_peers;            /* the first peers snapshot arrived */
    /* the last error frame from the relay */
    uint32_t error_code;
    uint64_t error_req;
    bool is_fatal;
    char error[PB_MAX_MESSAGE_BYTES + 1];
} farm_room;

/* The longest --timeout, --wait or --at-time +DUR of the farm commands. */
#define FARM_MAX_WAIT_MS 86400000u

/* Connects, says hello, and waits for the room's member list. Returns 0,
 * 2 (usage: no token, bad link) or 3 (the relay or the connection failed;
 * message printed). */
int farm_room_open(farm_room *r, const char *cmd, const cli_conn_opts *o,
                   uint32_t timeout_ms);
void farm_room_close(farm_room *r);

/* Services the connection for up to ms, keeping the room up to date and
 * handing every frame to fn (may be NULL) after that. Returns what pbc_wait
 * returns (PBC_WAIT_CLOSED: the connection ended, message printed). */
pbc_wait_end farm_room_wait(farm_room *r, uint32_t ms, pbc_frame_fn fn,
                            void *ctx);

/* The room clock now, estimated from welcome (µs). */
uint64_t farm_room_now_us(const farm_room *r);
/* Monotonic milliseconds (for deadlines). */
uint64_t farm_mono_ms(void);

/* The runtime with that client id (here or gone), or NULL. */
farm_dev *farm_room_dev(farm_room *r, uint64_t id);
/* How many runtimes are here now. */
uint32_t farm_room_count(const farm_room *r);
/* Its label, else its token name. */
const char *farm_dev_label(const farm_dev *d);
/* The same, with "#ID" appended when another runtime the room has listed
 * goes by it too: a name for d that no other device has. Returns out. */
const char *farm_room_label(const farm_room *r, const farm_dev *d, char *out,
                            size_t cap);

#endif
