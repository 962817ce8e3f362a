/* Apps' logs: lines from keel_app_log() and from the app's stdout/stderr go to
 * <state>/logs/<app>.log (rotated to .log.1 at 1 MiB) and into a small in-memory ring that
 * crash reports quote. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

#define SV_LOG_ROTATE_BYTES (1u << 20)

static void log_path(const sv_daemon *d, const char *name, char *out, size_t cap, bool old)
{
    (void)sv_fmt(out, cap, "%s/logs/%s.log%s", d->cfg.state_dir, name, old ? ".1" : "");
}

void sv_applog_line(const sv_daemon *d, sv_app *a, const char *src, const char *line, size_t len)
{
    /* strip a trailing newline and anything unprintable (an app's bytes go to a terminal) */
    char clean[SV_LOG_LINE_MAX];
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof clean - 1; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c == '\n' || c == '\r') && i >= len - 2) {
            continue; /* line endings, also a serial console's CR LF */
        }
        clean[n++] = (c >= 0x20 && c < 0x7f) || c == '\t' ? (char)c : '?';
    }
    clean[n] = '\0';
    (void)sv_fmt(a->log[a->log_next % SV_LOG_LINES], SV_LOG_LINE_MAX, "%s: %s", src, clean);
    a->log_next++;

    char path[PATH_MAX + 64];
    log_path(d, a->m.name, path, sizeof path, false);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > SV_LOG_ROTATE_BYTES) {
        char old[PATH_MAX + 64];
        log_path(d, a->m.name, old, sizeof old, true);
        (void)rename(path, old);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[SV_LOG_LINE_MAX + 64];
    int m = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, src, clean);
    if (m > 0) {
        ssize_t ignored = write(fd, buf, (size_t)m < sizeof buf ? (size_t)m : sizeof buf - 1);
        (void)ignored;
    }
    close(fd);
}

void sv_applog_output(const sv_daemon *d, sv_app *a, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n' || a->partial_len == sizeof a->partial - 1) {
            sv_applog_line(d, a, "out", a->partial, a->partial_len);
            a->partial_len = 0;
            if (buf[i] == '\n') {
                continue;
            }
        }
        a->partial[a->partial_len++] = buf[i];
    }
}

int sv_applog_tail(const sv_daemon *d, const char *name, int lines, int fd)
{
    char path[PATH_MAX + 64];
    log_path(d, name, path, sizeof path, false);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    /* Two passes: count lines, then print the last `lines`. Logs are at most ~1 MiB. */
    long total = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        total += c == '\n';
    }
    rewind(f);
    long skip = total > lines ? total - lines : 0;
    char line[SV_LOG_LINE_MAX + 128];
    while (fgets(line, sizeof line, f)) {
        if (skip > 0) {
            skip -= strchr(line, '\n') != NULL;
            continue;
        }
        ssize_t ignored = write(fd, line, strlen(line));
        (void)ignored;
    }
    fclose(f);
    return 0;
}
