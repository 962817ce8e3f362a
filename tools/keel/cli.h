/* The keel command's structure: `keel <noun> <verb> [options]`. A noun is a table of verbs;
 * each verb parses its own options (getopt_long) and returns one of the exit codes below, so
 * scripts can tell a usage error from a timeout from a failed check. */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum keel_exit {
    KEEL_EXIT_OK = 0,
    KEEL_EXIT_FAIL = 1,     /* the operation ran and failed */
    KEEL_EXIT_USAGE = 2,    /* bad command line */
    KEEL_EXIT_IO = 3,       /* a file, device or connection could not be used */
    KEEL_EXIT_TIMEOUT = 4,  /* no answer in time */
    KEEL_EXIT_VERIFY = 5,   /* a check failed: signature, hash, CRC, format */
    KEEL_EXIT_REMOTE = 6,   /* the other side answered with an error (exception, refusal) */
};

struct keel_cli_verb {
    const char *name;
    const char *summary;   /* one line for the noun's help */
    const char *usage;     /* full help: synopsis, options, examples */
    int (*run)(int argc, char **argv); /* argv[0] is the verb */
};

struct keel_cli_noun {
    const char *name;
    const char *summary;
    const struct keel_cli_verb *verbs; /* terminated by an entry with name NULL */
};

extern const struct keel_cli_noun *const keel_cli_nouns[];

/* True if argv holds -h or --help before any "--"; verbs call it first. */
bool keel_cli_wants_help(int argc, char **argv);
/* Prints the verb's usage to `out`. */
void keel_cli_print_verb_help(FILE *out, const char *noun, const struct keel_cli_verb *verb);
/* Prints "keel <noun> <verb>: <message>" to stderr and returns `code`. */
int keel_cli_fail(int code, const char *noun_verb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
