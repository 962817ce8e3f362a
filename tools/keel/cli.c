/* Shared helpers for the keel command's verbs. */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

bool keel_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            return false;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return true;
        }
    }
    return false;
}

void keel_cli_print_verb_help(FILE *out, const char *noun, const struct keel_cli_verb *verb)
{
    fprintf(out, "keel %s %s: %s\n\n%s", noun, verb->name, verb->summary, verb->usage);
}

int keel_cli_fail(int code, const char *noun_verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "keel %s: ", noun_verb);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}
