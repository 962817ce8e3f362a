/* keel app: operate the apps on a device through keeld's control socket (--socket PATH, else
 * $KEEL_SOCKET, else /run/keel/keeld.sock). Each verb is one request (src/supervisor/ctl.h);
 * keeld's error codes map onto the keel exit codes. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"

/* Parses --socket and returns the index of the first operand, or -1 on a usage error. */
static int common_opts(int argc, char **argv, const char **sock)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    *sock = keel_supervisor_ctl_default_path();
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
        if (o == 's') {
            *sock = optarg;
        } else {
            return -1;
        }
    }
    return optind;
}

static int exit_for(const char *answer)
{
    static const struct {
        const char *code;
        int exit;
    } map[] = {{"usage", KEEL_EXIT_USAGE}, {"notfound", KEEL_EXIT_FAIL},
               {"state", KEEL_EXIT_FAIL},  {"io", KEEL_EXIT_IO},
               {"verify", KEEL_EXIT_VERIFY}, {"fail", KEEL_EXIT_FAIL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t n = strlen(map[i].code);
        if (strncmp(answer + 4, map[i].code, n) == 0 && answer[4 + n] == ' ') {
            return map[i].exit;
        }
    }
    return KEEL_EXIT_REMOTE;
}

/* Sends the request, prints the body (or keeld's error), returns the exit code. */
static int request(const char *verb, const char *sock, const char *req, int timeout_ms)
{
    static char out[256 * 1024];
    int rc = keel_supervisor_ctl(sock, req, out, sizeof out, timeout_ms);
    if (rc < 0) {
        return keel_cli_fail(errno == ETIMEDOUT ? KEEL_EXIT_TIMEOUT : KEEL_EXIT_IO, verb,
                             "keeld at %s: %s (is keeld running? --socket PATH)", sock,
                             strerror(errno));
    }
    if (rc == 1) {
        char *msg = strchr(out + 4, ' ');
        fprintf(stderr, "keel %s: %s", verb, msg ? msg + 1 : out);
        return exit_for(out);
    }
    fputs(out, stdout);
    return KEEL_EXIT_OK;
}

static int with_name(int argc, char **argv, const char *verb, const char *keeld_verb,
                     bool count, int dflt)
{
    const char *sock;
    int i = common_opts(argc, argv, &sock);
    if (i < 0 || i >= argc || argc - i > (count ? 2 : 1)) {
        return keel_cli_fail(KEEL_EXIT_USAGE, verb, "expected NAME%s (see --help)",
                             count ? " [N]" : "");
    }
    char req[256];
    if (count) {
        int n = i + 1 < argc ? atoi(argv[i + 1]) : dflt;
        if (n < 1) {
            return keel_cli_fail(KEEL_EXIT_USAGE, verb, "N must be a positive number");
        }
        snprintf(req, sizeof req, "%s %s %d", keeld_verb, argv[i], n);
    } else {
        snprintf(req, sizeof req, "%s %s", keeld_verb, argv[i]);
    }
    return request(verb, sock, req, 10000);
}

static int app_list(int argc, char **argv)
{
    const char *sock;
    int i = common_opts(argc, argv, &sock);
    if (i < 0 || i != argc) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "app list", "no operands expected");
    }
    static char out[64 * 1024];
    int rc = keel_supervisor_ctl(sock, "list", out, sizeof out, 5000);
    if (rc != 0) {
        return request("app list", sock, "list", 5000);
    }
    printf("%-20s %-10s %-9s %7s %8s %7s %10s\n", "NAME", "VERSION", "STATE", "PID", "RESTARTS",
           "CRASHES", "UPTIME_S");
    for (char *save, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char name[64], ver[32], state[16];
        int pid;
        unsigned restarts, crashes;
        long long up;
        if (sscanf(l, "%63s %31s %15s %d %u %u %lld", name, ver, state, &pid, &restarts,
                   &crashes, &up) == 7) {
            printf("%-20s %-10s %-9s %7d %8u %7u %10.1f\n", name, ver, state, pid, restarts,
                   crashes, (double)up / 1000.0);
        }
    }
    return KEEL_EXIT_OK;
}

static int app_status(int argc, char **argv)
{
    const char *sock;
    int i = common_opts(argc, argv, &sock);
    if (i < 0 || i != argc) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "app status", "no operands expected");
    }
    return request("app status", sock, "status", 5000);
}

static int app_install(int argc, char **argv)
{
    const char *sock;
    int i = common_opts(argc, argv, &sock);
    if (i < 0 || argc - i != 1) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "app install", "expected one package directory");
    }
    char abs[PATH_MAX];
    if (!realpath(argv[i], abs)) {
        return keel_cli_fail(KEEL_EXIT_IO, "app install", "%s: %s", argv[i], strerror(errno));
    }
    if (strchr(abs, ' ')) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "app install", "%s: paths with spaces are not "
                             "supported", abs);
    }
    char req[PATH_MAX + 16];
    snprintf(req, sizeof req, "install %s", abs);
    fprintf(stderr, "installing %s ...\n", abs);
    return request("app install", sock, req, 60000);
}

static int app_start(int argc, char **argv)
{
    return with_name(argc, argv, "app start", "start", false, 0);
}
static int app_stop(int argc, char **argv)
{
    return with_name(argc, argv, "app stop", "stop", false, 0);
}
static int app_crashes(int argc, char **argv)
{
    return with_name(argc, argv, "app crashes", "crashes", true, 1);
}
static int app_logs(int argc, char **argv)
{
    return with_name(argc, argv, "app logs", "logs", true, 20);
}

#define SOCKET_OPT "  -s, --socket PATH  keeld's control socket (default $KEEL_SOCKET or /run/keel/keeld.sock)\n"

static const struct keel_cli_verb app_verbs[] = {
    {"list", "list the apps and their state",
     "usage: keel app list [--socket PATH]\n\n"
     "One line per app: name, version, state (running, stopped, stopping, backoff, failed),\n"
     "pid, restarts, crashes, uptime.\n\n" SOCKET_OPT,
     app_list},
    {"status", "show keeld's sandbox protections",
     "usage: keel app status [--socket PATH]\n\n"
     "Which protections this kernel lets keeld switch on, and which are off.\n\n" SOCKET_OPT,
     app_status},
    {"install", "install a package directory",
     "usage: keel app install [--socket PATH] DIR\n\n"
     "Copies the package (app_manifest.json and the app's files) into keeld's store; the\n"
     "previous version is kept for a revert. The app must be stopped. Start it with\n"
     "keel app start NAME. Exit 5 if the manifest is invalid.\n\n" SOCKET_OPT,
     app_install},
    {"start", "start an app", "usage: keel app start [--socket PATH] NAME\n\n" SOCKET_OPT,
     app_start},
    {"stop", "stop an app (SIGTERM, then SIGKILL after the grace period)",
     "usage: keel app stop [--socket PATH] NAME\n\n" SOCKET_OPT, app_stop},
    {"crashes", "show an app's newest crash reports",
     "usage: keel app crashes [--socket PATH] NAME [N]\n\n"
     "Prints the newest N reports (default 1): signal, registers, symbolised stack, last\n"
     "log lines.\n\n" SOCKET_OPT,
     app_crashes},
    {"logs", "show the end of an app's log",
     "usage: keel app logs [--socket PATH] NAME [N]\n\n"
     "Prints the last N lines (default 20) of the app's log: its keel_app_log() lines\n"
     "(app:), its stdout and stderr (out:) and keeld's notes about it (keeld:).\n\n" SOCKET_OPT,
     app_logs},
    {NULL, NULL, NULL, NULL},
};

const struct keel_cli_noun keel_noun_app = {"app", "apps on a device (keeld)", app_verbs};
