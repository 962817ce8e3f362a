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
#include "keel/image.h"
#include "package.h"

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
    printf("%-20s %-10s %-9s %7s %8s %7s %10s %4s %6s %7s %9s %s\n", "NAME", "VERSION", "STATE",
           "PID", "RESTARTS", "CRASHES", "UPTIME_S", "SLOT", "TRIAL", "LEFT_S", "CONFIRMED",
           "REVERTED_FROM");
    for (char *save, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char name[64], ver[32], state[16], slot[4] = "-", trial[24] = "-", conf[8] = "-",
             rev[32] = "-", left[24] = "-";
        int pid, ready;
        unsigned restarts, crashes;
        long long up, left_ms = -1;
        int n = sscanf(l, "%63s %31s %15s %d %u %u %lld %d %3s %23s %lld %7s %31s", name, ver,
                       state, &pid, &restarts, &crashes, &up, &ready, slot, trial, &left_ms,
                       conf, rev);
        if (n < 7) {
            continue;
        }
        if (left_ms >= 0) {
            snprintf(left, sizeof left, "%.1f", (double)left_ms / 1000.0);
        }
        printf("%-20s %-10s %-9s %7d %8u %7u %10.1f %4s %6s %7s %9s %s\n", name, ver, state, pid,
               restarts, crashes, (double)up / 1000.0, slot, trial, left, conf, rev);
    }
    return KEEL_EXIT_OK;
}

static int app_status(int argc, char **argv)
{
    const char *sock;
    int i = common_opts(argc, argv, &sock);
    if (i < 0 || argc - i > 1 || (i < argc && strlen(argv[i]) > 150)) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "app status", "at most one operand: an app name");
    }
    if (i < argc) {
        char req[200];
        snprintf(req, sizeof req, "status %s", argv[i]);
        return request("app status", sock, req, 5000);
    }
    return request("app status", sock, "status", 5000);
}

static int app_install(int argc, char **argv)
{
    const char *sock;
    int i = common_opts(argc, argv, &sock);
    if (i < 0 || argc - i != 1) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "app install", "expected one package");
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

/* pack: archive a package directory and sign it into a package image. */
static int app_pack(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"counter", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    const char *key = NULL;
    unsigned long counter = 0;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "k:n:", opts, NULL)) != -1) {
        if (o == 'k') {
            key = optarg;
        } else if (o == 'n') {
            counter = strtoul(optarg, NULL, 10);
        } else {
            return KEEL_EXIT_USAGE;
        }
    }
    if (!key || argc - optind != 2) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "app pack", "expected --key KEY.sec DIR OUT");
    }
    const char *dir = argv[optind], *outp = argv[optind + 1];
    char msg[512];
    sv_manifest m;
    sv_err e = sv_manifest_load(dir, &m, msg, sizeof msg);
    if (e) {
        return keel_cli_fail(e == SV_ERR_IO ? KEEL_EXIT_IO : KEEL_EXIT_VERIFY, "app pack", "%s",
                             msg);
    }
    keel_image_seckey sec;
    keel_image_error ierr;
    if (keel_image_seckey_load(key, &sec, &ierr) != KEEL_IMAGE_OK) {
        return keel_cli_fail(KEEL_EXIT_IO, "app pack", "%s", ierr.msg);
    }
    uint8_t *payload;
    size_t plen;
    if (sv_package_build(dir, &payload, &plen, msg, sizeof msg) != SV_OK) {
        return keel_cli_fail(KEEL_EXIT_IO, "app pack", "%s", msg);
    }
    keel_image_header h = {.security_counter = (uint32_t)counter, .payload_size = (uint32_t)plen};
    if (!keel_image_uuid_parse(m.id, h.component) ||
        !keel_image_version_parse(m.version, &h.version)) {
        free(payload);
        return keel_cli_fail(KEEL_EXIT_VERIFY, "app pack", "%s: id or version unusable", dir);
    }
    size_t cap = keel_image_size((uint32_t)plen), n = 0;
    uint8_t *img = malloc(cap);
    keel_image_err ie = img ? keel_image_sign(&h, payload, &sec, img, cap, &n) : KEEL_IMAGE_ERR_IO;
    free(payload);
    if (ie == KEEL_IMAGE_OK) {
        ie = keel_image_write_file(outp, img, n, &ierr);
    }
    free(img);
    if (ie != KEEL_IMAGE_OK) {
        return keel_cli_fail(KEEL_EXIT_IO, "app pack", "%s", keel_image_err_name(ie));
    }
    printf("%s: %s %s (%s), %zu bytes, signed\n", outp, m.name, m.version, m.id, n);
    return KEEL_EXIT_OK;
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
     "pid, restarts, crashes, uptime; then its update state: SLOT the update slot it runs\n"
     "from (A or B; - without slots), TRIAL the trial starts used/allowed (- when not on\n"
     "trial), LEFT_S the seconds left to confirm health, CONFIRMED yes once the running\n"
     "version is the confirmed one, REVERTED_FROM the version last given up (docs/apps.md).\n\n"
     SOCKET_OPT,
     app_list},
    {"status", "show keeld's sandbox protections, or one app's version, trial and deployment",
     "usage: keel app status [--socket PATH] [NAME]\n\n"
     "Without NAME: which protections this kernel lets keeld switch on, and which are off.\n"
     "With NAME: one \"key value\" line each for the app's name, version, state, slot,\n"
     "trial, trial_starts, trial_left_ms, confirmed, reverted_from and deployment (none,\n"
     "downloading DONE/TOTAL URL, staged URL, retrying attempt N in MS ms URL).\n\n" SOCKET_OPT,
     app_status},
    {"pack", "archive and sign a package directory into a package image",
     "usage: keel app pack --key KEY.sec [--counter N] DIR OUT\n\n"
     "DIR holds app_manifest.json and the app's files. OUT is a signed Keel image\n"
     "(docs/updates.md) whose component and version are the manifest's id and version.\n"
     "Make a key with keel image keygen; devices trust its .pub (device config\n"
     "\"trusted_keys\").\n\n"
     "example: keel app pack --key release.sec build/envmon envmon-1.2.0.kpkg\n",
     app_pack},
    {"install", "install a signed package image (or, in development, a directory)",
     "usage: keel app install [--socket PATH] PACKAGE\n\n"
     "keeld verifies the image's signature against its trusted keys, checks the manifest\n"
     "inside names the same component and version, and unpacks it into its store; the\n"
     "previous version is kept for a revert. The app must be stopped; start it with\n"
     "keel app start NAME. A directory is accepted only by a keeld whose device config sets\n"
     "\"allow_unsigned\". Exit 5 if the package does not verify.\n\n" SOCKET_OPT,
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
