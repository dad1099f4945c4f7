/* revoke.c — tokens that stop working before their expiry
 * (docs/SECURITY.md § Tokens). `patchbay token revoke` records a
 * revocation in the history (every token of a name in a room, or one
 * token by its id); the relay reads new ones every second and at start,
 * refuses them at hello and closes the live sessions they name at once.
 * A live session also ends when its token expires. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct relay_revoked {
    char room[PB_MAX_NAME_BYTES + 1]; /* with name; empty for an id */
    char name[PB_MAX_NAME_BYTES + 1];
    char id[RELAY_TOKEN_ID_CHARS + 1];
    struct relay_revoked *next;
};

static bool names(const relay_revoked *r, const char *room, const char *name,
                  const char *id)
{
    return r->id[0] ? !strcmp(r->id, id)
                    : !strcmp(r->room, room) && !strcmp(r->name, name);
}

const char *relay_revoked_why(const relay_server *srv, const char *room,
                              const char *name, const char *id)
{
    for (const relay_revoked *r = srv->revoked; r; r = r->next)
        if (names(r, room, name, id))
            return r->id[0] ? "this token was revoked"
                            : "the tokens of this name in this room were "
                              "revoked";
    return NULL;
}

static void close_if(relay_server *srv, const relay_revoked *r)
{
    for (uint32_t i = 0; i < srv->n_slots; i++) {
        relay_session *s = srv->sessions[i];
        if (s->state == RELAY_SESS_LIVE && s->room &&
            names(r, s->room->name, s->name, s->token_id))
            relay_session_send_error(
                s, PB_ERR_AUTH_REVOKED, 0, true, "%s",
                relay_revoked_why(srv, s->room->name, s->name, s->token_id));
    }
}

void relay_revoked_add(relay_server *srv, const char *room, const char *name,
                       const char *id)
{
    room = room ? room : "";
    name = name ? name : "";
    id = id ? id : "";
    for (const relay_revoked *r = srv->revoked; r; r = r->next)
        if (!strcmp(r->room, room) && !strcmp(r->name, name) &&
            !strcmp(r->id, id))
            return; /* an edge hears of one again after Redis restarts */
    relay_revoked *r = calloc(1, sizeof *r);
    if (!r)
        return;
    snprintf(r->room, sizeof r->room, "%s", room);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->id, sizeof r->id, "%s", id);
    if (srv->signer) /* and every edge */
        relay_signer_revoked(srv, r->room, r->name, r->id);
    r->next = srv->revoked;
    srv->revoked = r;
    lwsl_user("revoked: %s%s%s%s\n", r->id[0] ? "token " : "name ",
              r->id[0] ? r->id : r->name, r->id[0] ? "" : " in room ",
              r->id[0] ? "" : r->room);
    close_if(srv, r);
}

static void relay_revoked_add_fn(void *ctx, const char *room, const char *name,
                                 const char *id)
{
    relay_revoked_add(ctx, room, name, id);
}

void relay_revoked_each(relay_server *srv,
                        void (*fn)(relay_server *srv, const char *room,
                                   const char *name, const char *id))
{
    for (const relay_revoked *r = srv->revoked; r; r = r->next)
        fn(srv, r->room, r->name, r->id);
}

static void poll_revocations(relay_server *srv)
{
    pb_errmsg why;
    /* a connection of its own: the event loop's may keep a statement that
     * holds an older snapshot of the database, where `patchbay token
     * revoke`'s row is not yet */
    if (!srv->revoke_db && !(srv->revoke_db = relay_history_open_readonly(
                                 srv->history_path, &why)))
        lwsl_err("%s\n", why.text);
    if (srv->revoke_db &&
        relay_history_revocations(srv->revoke_db, &srv->revoked_after,
                                  relay_revoked_add_fn, srv, &why))
        lwsl_err("%s\n", why.text);
}

static void expire(relay_server *srv)
{
    uint64_t now_s = relay_now_us() / 1000000u;
    for (uint32_t i = 0; i < srv->n_slots; i++) {
        relay_session *s = srv->sessions[i];
        if (s->state == RELAY_SESS_LIVE && s->expires_s &&
            s->expires_s <= now_s)
            relay_session_send_error(s, PB_ERR_AUTH_EXPIRED, 0, true,
                                     "the token of %s expired; ask the room's "
                                     "owner for a new link",
                                     s->name);
    }
}

static void tick(lws_sorted_usec_list_t *sul)
{
    relay_server *srv = lws_container_of(sul, relay_server, revoke_sul);
    poll_revocations(srv);
    expire(srv);
    lws_sul_schedule(srv->ctx, 0, &srv->revoke_sul, tick, LWS_US_PER_SEC);
}

void relay_revocations_start(relay_server *srv)
{
    poll_revocations(srv);
    lws_sul_schedule(srv->ctx, 0, &srv->revoke_sul, tick, LWS_US_PER_SEC);
}

void relay_revocations_free(relay_server *srv)
{
    relay_history_close(srv->revoke_db);
    srv->revoke_db = NULL;
    while (srv->revoked) {
        relay_revoked *r = srv->revoked;
        srv->revoked = r->next;
        free(r);
    }
}
