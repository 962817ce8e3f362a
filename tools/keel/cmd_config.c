/* keel config: check configuration files before a device reads them. */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "cli.h"
#include "keel/config.h"

static int config_check(int argc, char **argv)
{
    if (argc < 2) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "config check", "which file? (FILE...)");
    }
    int rc = KEEL_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        cJSON *root;
        keel_config_error err;
        keel_config_err e = keel_config_load(argv[i], &root, &err);
        if (e == KEEL_CONFIG_OK) {
            printf("%s: ok\n", argv[i]);
            cJSON_Delete(root);
        } else {
            fprintf(stderr, "%s\n", err.msg);
            rc = e == KEEL_CONFIG_ERR_IO ? KEEL_EXIT_IO : KEEL_EXIT_VERIFY;
        }
    }
    return rc;
}

static const struct keel_cli_verb config_verbs[] = {
    {"check", "check that configuration files are well-formed JSON",
     "usage: keel config check FILE...\n\n"
     "Reports the first error in each file as file:line:column. Exit 5 if any file is\n"
     "malformed, 3 if one cannot be read.\n",
     config_check},
    {NULL, NULL, NULL, NULL},
};

const struct keel_cli_noun keel_noun_config = {"config", "configuration files", config_verbs};
