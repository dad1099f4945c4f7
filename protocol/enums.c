/* enums.c — the string names of the enumerations carried on the wire, and
 * of the frame types. Index 0 is the "absent" value and has no name. */
#include "internal.h"

const char *const pb_role_names[] = {"", "owner", "editor", "runtime",
                                     "viewer"};
const char *const pb_lang_names[] = {"", "c", "lisp"};
const char *const pb_ack_state_names[] = {"", "prepared", "committed",
                                          "failed"};
const char *const pb_severity_names[] = {"", "error", "warning", "note"};
const char *const pb_log_level_names[] = {"", "info", "warn", "error", "trap"};
const char *const pb_peers_event_names[] = {"", "snapshot", "join", "leave",
                                            "update"};
const char *const pb_history_mode_names[] = {"", "state", "range"};
const char *const pb_patch_kind_names[] = {"", "expr"};
const char *const pb_test_status_names[] = {"", "pass", "fail", "trap",
                                            "timeout"};
const char *const pb_buffer_op_names[] = {"", "create", "set", "close"};

static const char *name_of(const char *const *names, unsigned n, unsigned v)
{
    return v >= 1 && v <= n ? names[v] : "";
}

static unsigned parse(const char *const *names, unsigned n, pb_str s)
{
    for (unsigned v = 1; v <= n; v++)
        if (pb_str_eq(s, names[v]))
            return v;
    return 0;
}

const char *pb_role_name(pb_role r)
{
    return name_of(pb_role_names, PB_N_ROLES, (unsigned)r);
}

pb_role pb_role_parse(pb_str s)
{
    return (pb_role)parse(pb_role_names, PB_N_ROLES, s);
}

const char *pb_lang_name(pb_lang l)
{
    return name_of(pb_lang_names, PB_N_LANGS, (unsigned)l);
}

pb_lang pb_lang_parse(pb_str s)
{
    return (pb_lang)parse(pb_lang_names, PB_N_LANGS, s);
}

const char *pb_ack_state_name(pb_ack_state s)
{
    return name_of(pb_ack_state_names, PB_N_ACK_STATES, (unsigned)s);
}

const char *pb_severity_name(pb_severity s)
{
    return name_of(pb_severity_names, PB_N_SEVERITIES, (unsigned)s);
}

const char *pb_log_level_name(pb_log_level l)
{
    return name_of(pb_log_level_names, PB_N_LOG_LEVELS, (unsigned)l);
}

const char *pb_patch_kind_name(pb_patch_kind k)
{
    return name_of(pb_patch_kind_names, PB_N_PATCH_KINDS, (unsigned)k);
}

pb_patch_kind pb_patch_kind_parse(pb_str s)
{
    return (pb_patch_kind)parse(pb_patch_kind_names, PB_N_PATCH_KINDS, s);
}

const char *pb_test_status_name(pb_test_status s)
{
    return name_of(pb_test_status_names, PB_N_TEST_STATUSES, (unsigned)s);
}

const char *pb_buffer_op_name(pb_buffer_op_kind k)
{
    return name_of(pb_buffer_op_names, PB_N_BUFFER_OPS, (unsigned)k);
}
