/* A device for the supervisor tests: a state directory, packages built from the test apps
 * (tests/integration/supervisor/apps), a device config, and a keeld started on them with the
 * fixture. Shared by the integration test and the benchmark's driver. */
#ifndef KEEL_TEST_SV_WORLD_H
#define KEEL_TEST_SV_WORLD_H

#include <stdbool.h>
#include <stddef.h>

#include "fixture.h"

typedef struct sv_world {
    char root[256];
    char state[300];
    char sock[320];
    char config[320];
    unsigned base_uid;
    kf_proc keeld;
} sv_world;

/* Creates the directories and the device config (extra: more JSON members, "" for none). */
int sv_world_init(sv_world *w, const char *tag, const char *extra_config);
/* Writes a package into dir/<name> with the app binary `exe` (sv_sample or sv_evil, from the
 * build tree) and the manifest members `json` (everything but id, name, version, exec). */
int sv_world_package(const char *dir, const char *name, const char *exe, const char *json);
/* The same with a version other than 1.0.0. */
int sv_world_package_version(const char *dir, const char *name, const char *exe,
                             const char *version, const char *json);
/* The component id sv_world_package gives the app `name`. */
const char *sv_world_id(const char *name);
/* The store directory (packages keeld loads at start). */
const char *sv_world_store(sv_world *w);
/* Starts keeld and waits for its control socket. */
int sv_world_start(sv_world *w);
/* One control request; 0 OK, 1 ERR, -1 unreachable. */
int sv_world_ctl(sv_world *w, const char *req, char *out, size_t cap);
/* Polls `req` until its answer contains needle, or timeout_ms passes. */
bool sv_world_wait(sv_world *w, const char *req, const char *needle, int timeout_ms);

#endif
