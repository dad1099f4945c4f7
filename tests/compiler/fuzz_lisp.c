/* fuzz_lisp.c — libFuzzer target for the Lisp front end: source bytes from
 * an editor through the reader and the lowering (with a few room vars).
 * Beyond "no crash, no leak, no overread, no stack overflow", it checks that
 * a lowering that succeeds leaves no position marker in the C and a sorted
 * position map. Seed corpus: tests/compiler/lisp_corpus. */
#include "lisp/lisp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const lisp_room_var vars[] = {
        {"twice", "dd", "double twice(double x)"},
        {"tempo", "d", "double tempo(void)"},
        {"draw", "vdi", "void draw(double t, pb_canvas *c)"},
        {"ok_p", "id", "_Bool ok_p(double x)"},
    };
    if (size > 64 * 1024)
        return 0;
    lisp_arena a = {0};
    lisp_c c;
    int rc = lisp_to_c(&a, (const char *)data, size, "fuzz", vars, 4, &c);
    if (rc == 0) {
        if (memchr(c.c, '\1', c.len) || memchr(c.c, '\2', c.len) ||
            strlen(c.c) != c.len)
            abort();
        for (uint32_t i = 1; i < c.n_map; i++)
            if (c.map[i - 1].c_line > c.map[i].c_line)
                abort();
    } else if (rc == -1 && (c.n_errs == 0 || c.errs[0].line == 0)) {
        abort(); /* an error always says where */
    }
    lisp_arena_free(&a);
    return 0;
}
