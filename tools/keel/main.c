/* keel: one command for the developer, the operator and the device.
 * Dispatches `keel <noun> <verb>`; every level answers --help. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef KEEL_VERSION
#define KEEL_VERSION "0.1.0"
#endif

static void print_top_help(FILE *out)
{
    fprintf(out, "usage: keel <noun> <verb> [options]\n"
                 "       keel <noun> --help | keel --help | keel --version\n\n"
                 "Keel " KEEL_VERSION ": an open platform for secure connected devices.\n\n"
                 "nouns:\n");
    for (int i = 0; keel_cli_nouns[i]; i++) {
        fprintf(out, "  %-10s %s\n", keel_cli_nouns[i]->name, keel_cli_nouns[i]->summary);
    }
    fprintf(out, "\nexit codes: 0 ok, 1 failed, 2 usage, 3 i/o, 4 timeout, 5 verification,"
                 " 6 remote error\n");
}

static void print_noun_help(FILE *out, const struct keel_cli_noun *n)
{
    fprintf(out, "usage: keel %s <verb> [options]\n\n%s\n\nverbs:\n", n->name, n->summary);
    for (const struct keel_cli_verb *v = n->verbs; v->name; v++) {
        fprintf(out, "  %-10s %s\n", v->name, v->summary);
    }
    fprintf(out, "\n'keel %s <verb> --help' for a verb's options.\n", n->name);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_top_help(stderr);
        return KEEL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_top_help(stdout);
        return KEEL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("keel %s\n", KEEL_VERSION);
        return KEEL_EXIT_OK;
    }
    const struct keel_cli_noun *noun = NULL;
    for (int i = 0; keel_cli_nouns[i]; i++) {
        if (strcmp(keel_cli_nouns[i]->name, argv[1]) == 0) {
            noun = keel_cli_nouns[i];
        }
    }
    if (!noun) {
        fprintf(stderr, "keel: unknown noun '%s'\n\n", argv[1]);
        print_top_help(stderr);
        return KEEL_EXIT_USAGE;
    }
    if (argc < 3) {
        print_noun_help(stderr, noun);
        return KEEL_EXIT_USAGE;
    }
    if (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0 ||
        strcmp(argv[2], "help") == 0) {
        print_noun_help(stdout, noun);
        return KEEL_EXIT_OK;
    }
    for (const struct keel_cli_verb *v = noun->verbs; v->name; v++) {
        if (strcmp(v->name, argv[2]) == 0) {
            if (keel_cli_wants_help(argc - 2, argv + 2)) {
                keel_cli_print_verb_help(stdout, noun->name, v);
                return KEEL_EXIT_OK;
            }
            return v->run(argc - 2, argv + 2);
        }
    }
    fprintf(stderr, "keel %s: unknown verb '%s'\n\n", noun->name, argv[2]);
    print_noun_help(stderr, noun);
    return KEEL_EXIT_USAGE;
}
