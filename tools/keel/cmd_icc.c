/* keel icc: check app_manifest.json files and whether two components may have an intercore
 * channel (each must name the other), before a device is asked to pair them. */
#include <stdio.h>

#include "cli.h"
#include "keel/manifest.h"

static int load(const char *path, keel_manifest *m)
{
    keel_manifest_error err;
    keel_manifest_err e = keel_manifest_load(path, m, &err);
    if (e != KEEL_MANIFEST_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return e == KEEL_MANIFEST_ERR_IO ? KEEL_EXIT_IO : KEEL_EXIT_VERIFY;
    }
    return KEEL_EXIT_OK;
}

static int icc_check(int argc, char **argv)
{
    if (argc < 2) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "icc check", "which manifest? (FILE...)");
    }
    int rc = KEEL_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        keel_manifest m;
        int r = load(argv[i], &m);
        if (r != KEEL_EXIT_OK) {
            rc = r;
            continue;
        }
        char id[KEEL_MANIFEST_UUID_STR];
        keel_manifest_uuid_format(&m.id, id);
        printf("%s: ok: %s %s (%s) %s, %zu intercore partner%s\n", argv[i], m.name, m.version,
               keel_manifest_kind_name(m.kind), id, m.caps.n_partners,
               m.caps.n_partners == 1 ? "" : "s");
        for (size_t p = 0; p < m.caps.n_partners; p++) {
            keel_manifest_uuid_format(&m.caps.partners[p], id);
            printf("  partner %s\n", id);
        }
    }
    return rc;
}

static int icc_pair(int argc, char **argv)
{
    if (argc != 3) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "icc pair", "needs two manifests (A B)");
    }
    keel_manifest a, b;
    int rc = load(argv[1], &a);
    if (rc == KEEL_EXIT_OK)
        rc = load(argv[2], &b);
    if (rc != KEEL_EXIT_OK)
        return rc;
    keel_manifest_error err;
    if (keel_manifest_pair_allowed(&a, &b, &err) != KEEL_MANIFEST_OK) {
        return keel_cli_fail(KEEL_EXIT_FAIL, "icc pair", "denied: %s", err.msg);
    }
    printf("%s and %s may share an intercore channel\n", a.name, b.name);
    return KEEL_EXIT_OK;
}

static const struct keel_cli_verb icc_verbs[] = {
    {"check", "validate app_manifest.json files and list their intercore partners",
     "usage: keel icc check FILE...\n\n"
     "Parses each manifest strictly (docs/manifest.md) and prints its component, or the first\n"
     "error as file: key: problem. Exit 5 if a manifest is invalid, 3 if one cannot be read.\n",
     icc_check},
    {"pair", "say whether two components may have an intercore channel",
     "usage: keel icc pair MANIFEST_A MANIFEST_B\n\n"
     "A channel exists only if each manifest names the other's component ID in\n"
     "capabilities.intercore. Exit 0 if allowed, 1 if denied (the reason names the side that\n"
     "refuses), 5 if a manifest is invalid, 3 if one cannot be read.\n",
     icc_pair},
    {NULL, NULL, NULL, NULL},
};

const struct keel_cli_noun keel_noun_icc = {"icc", "intercore channels and app manifests",
                                            icc_verbs};
