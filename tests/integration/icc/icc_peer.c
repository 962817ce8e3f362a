/* A plain process on one end of an intercore channel, for the integration tests: it receives
 * its end over a Unix socket (SCM_RIGHTS), as a component receives it from the supervisor.
 *
 *   icc_peer FD echo [DIE_AFTER]   echo every message back ({value, seq}); answer requests;
 *                                  exit 0 on a QUIT message; after DIE_AFTER echoes, SIGKILL
 *                                  itself (a crash at a known point)
 *   icc_peer FD client N           N requests, each reply checked; then QUIT; exit 0 if all
 *                                  were right */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/icc.h"
#include "icc_peer.h"

static int fail(const char *what, keel_icc_err rc)
{
    fprintf(stderr, "icc_peer: %s: %s\n", what, keel_icc_err_name(rc));
    return 1;
}

static int echo(keel_icc *c, long die_after)
{
    long echoed = 0;
    for (;;) {
        keel_icc_msg m;
        uint32_t v[2] = {0, 0};
        keel_icc_err rc = keel_icc_recv(c, &m, v, sizeof v, 20000);
        if (rc != KEEL_ICC_OK)
            return fail("recv", rc);
        if (m.type == PEER_QUIT)
            return 0;
        v[1] = m.seq;
        rc = (m.flags & KEEL_ICC_F_REQUEST) ? keel_icc_reply(c, &m, PEER_ECHO, v, sizeof v, 20000)
                                            : keel_icc_send(c, PEER_ECHO, v, sizeof v, 20000);
        if (rc != KEEL_ICC_OK)
            return fail("send", rc);
        if (++echoed == die_after) {
            raise(SIGKILL);
        }
    }
}

static int client(keel_icc *c, long n)
{
    for (long i = 0; i < n; i++) {
        uint32_t v = (uint32_t)i * 3u, got[2];
        keel_icc_msg m;
        keel_icc_err rc = keel_icc_request(c, PEER_DATA, &v, sizeof v, &m, got, sizeof got, 20000);
        if (rc != KEEL_ICC_OK)
            return fail("request", rc);
        if (m.len != sizeof got || got[0] != v || got[1] != (uint32_t)i + 1) {
            fprintf(stderr, "icc_peer: reply %ld: got %u seq %u\n", i, got[0], got[1]);
            return 1;
        }
    }
    keel_icc_err rc = keel_icc_send(c, PEER_QUIT, NULL, 0, 20000);
    return rc == KEEL_ICC_OK ? 0 : fail("quit", rc);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: icc_peer FD echo [DIE_AFTER] | icc_peer FD client N\n");
        return 2;
    }
    keel_icc_end e;
    keel_icc_err rc = keel_icc_end_recv(atoi(argv[1]), &e);
    if (rc != KEEL_ICC_OK)
        return fail("end_recv", rc);
    keel_icc *c;
    keel_icc_open_opts opts = {.spin_ns = 20000};
    if ((rc = keel_icc_open(&e, &opts, &c)) != KEEL_ICC_OK)
        return fail("open", rc);
    printf("icc_peer: open side %d\n", (int)keel_icc_ring_of(c)->side);
    fflush(stdout);
    int status;
    if (strcmp(argv[2], "echo") == 0) {
        status = echo(c, argc > 3 ? atol(argv[3]) : -1);
    } else if (strcmp(argv[2], "client") == 0 && argc > 3) {
        status = client(c, atol(argv[3]));
    } else {
        status = 2;
    }
    keel_icc_close(c);
    return status;
}
