/* Crash reports: one text file per crash under <state>/crashes/<app>/<seq>.txt, the newest N
 * kept (device config max_crash_reports). A report joins what keeld saw (the wait status, why
 * keeld killed it: heartbeat, stop), what libkeel's handler sent (signal, fault address,
 * registers, return addresses and where each object was loaded; wire.h), symbols from the
 * ELF files, and the app's last log lines. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

/* si_code of a SIGSYS sent by a seccomp filter (the kernel's asm-generic/siginfo.h; glibc's
 * headers do not carry it) */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

#include "supervisor.h"

static const char *code_name(int signo, int code)
{
    if (code == SI_USER) {
        return "sent by kill";
    }
    if (code == SI_TKILL) {
        return "raised by the app (abort, raise)";
    }
    switch (signo) {
    case SIGSEGV:
        return code == SEGV_MAPERR ? "address not mapped" : code == SEGV_ACCERR ? "access denied" : "";
    case SIGBUS:
        return code == BUS_ADRALN ? "misaligned" : code == BUS_ADRERR ? "no such physical address" : "";
    case SIGFPE:
        return code == FPE_INTDIV ? "integer divide by zero" : "arithmetic";
    case SIGILL:
        return "illegal instruction";
    case SIGSYS:
        return code == SYS_SECCOMP ? "refused by the seccomp filter" : "";
    default:
        return "";
    }
}

static const char *reg_names[KEEL_WIRE_CRASH_REGS] = {
#if defined(__x86_64__)
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx",
    "rdx", "rax", "rcx", "rsp", "rip", "eflags", "csgsfs", "err", "trapno", "oldmask", "cr2",
#endif
};

/* The host path of the object an app saw at `path` inside its sandbox. */
static bool host_path(const sv_app *a, const char *path, char *out, size_t cap)
{
    if (path[0] == '\0') {
        return snprintf(out, cap, "%s/%s", a->pkg_dir, a->m.exec) < (int)cap;
    }
    if (strncmp(path, "/app/", 5) == 0) {
        return snprintf(out, cap, "%s/%s", a->pkg_dir, path + 5) < (int)cap;
    }
    if (strncmp(path, "/usr/", 5) != 0 && strncmp(path, "/lib", 4) != 0) {
        /* linux-vdso.so.1 has no file; and the record comes from the app: keeld reads only what
         * the app could have loaded (its package, the read-only /usr) */
        return false;
    }
    if (strstr(path, "/../")) {
        return false;
    }
    /* /usr is bound read-only from the host, and /lib is a link into it: same path here */
    return snprintf(out, cap, "%s", path) < (int)cap;
}

static void frame_line(FILE *f, const sv_app *a, int i, uint64_t pc)
{
    const keel_wire_crash *c = &a->crash;
    for (uint32_t k = 0; k < c->nmodules && k < KEEL_WIRE_CRASH_MODULES; k++) {
        const keel_wire_module *m = &c->modules[k];
        if (pc < m->start || pc >= m->end) {
            continue;
        }
        char path[PATH_MAX + 128], sym[300];
        char shown[sizeof m->path + 1];
        memcpy(shown, m->path, sizeof m->path);
        shown[sizeof m->path] = '\0';
        /* return addresses point after the call: look up pc-1 for all but the faulting frame */
        uint64_t rel = pc - m->base - (i > 0 ? 1 : 0);
        if (host_path(a, shown, path, sizeof path) && sv_elf_symbolize(path, rel, sym, sizeof sym)) {
            if (i > 0) {
                /* print the offset of the return address, as debuggers do */
                char *plus = strrchr(sym, '+');
                if (plus) {
                    unsigned long long off = strtoull(plus + 1, NULL, 16) + 1;
                    snprintf(plus, sizeof sym - (size_t)(plus - sym), "+0x%llx", off);
                }
            }
            fprintf(f, "  #%-2d 0x%016llx %s (%s)\n", i, (unsigned long long)pc, sym,
                    shown[0] ? shown : a->m.exec);
        } else {
            fprintf(f, "  #%-2d 0x%016llx %s+0x%llx\n", i, (unsigned long long)pc,
                    shown[0] ? shown : a->m.exec, (unsigned long long)(pc - m->base));
        }
        return;
    }
    fprintf(f, "  #%-2d 0x%016llx ?\n", i, (unsigned long long)pc);
}

static uint32_t next_seq(const char *dir, uint32_t keep)
{
    DIR *dp = opendir(dir);
    uint32_t max = 0;
    if (!dp) {
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(dp))) {
        char *end;
        unsigned long v = strtoul(e->d_name, &end, 10);
        if (end != e->d_name && strcmp(end, ".txt") == 0 && v > max) {
            max = (uint32_t)v;
        }
    }
    /* keep the newest keep-1 of the old ones: the new report makes keep */
    rewinddir(dp);
    while ((e = readdir(dp))) {
        char *end;
        unsigned long v = strtoul(e->d_name, &end, 10);
        if (end != e->d_name && strcmp(end, ".txt") == 0 && v + keep <= max + 1) {
            char p[PATH_MAX + 300];
            (void)sv_fmt(p, sizeof p, "%s/%s", dir, e->d_name);
            (void)unlink(p);
        }
    }
    closedir(dp);
    return max + 1;
}

uint32_t sv_crash_write(const sv_daemon *d, sv_app *a, int wstatus, const char *reason)
{
    char dir[PATH_MAX + 64], path[PATH_MAX + 128], tmp[PATH_MAX + 128];
    (void)sv_fmt(dir, sizeof dir, "%s/crashes/%s", d->cfg.state_dir, a->m.name);
    (void)mkdir(dir, 0750);
    uint32_t seq = next_seq(dir, d->cfg.max_crash_reports);
    snprintf(path, sizeof path, "%s/%06u.txt", dir, seq);
    snprintf(tmp, sizeof tmp, "%s/.%06u.tmp", dir, seq);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        sv_logf("%s: cannot write crash report %s: %s", a->m.name, tmp, strerror(errno));
        return 0;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    fprintf(f, "crash report %u\napp: %s\nversion: %s\nid: %s\n", seq, a->m.name, a->m.version,
            a->m.id);
    fprintf(f, "time: %04d-%02d-%02dT%02d:%02d:%02dZ\n", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    fprintf(f, "reason: %s\n", reason);
    if (WIFSIGNALED(wstatus)) {
        int s = WTERMSIG(wstatus);
        fprintf(f, "exit: killed by SIG%s (%s)\n", sigabbrev_np(s) ? sigabbrev_np(s) : "?",
                strsignal(s));
    } else if (WIFEXITED(wstatus)) {
        fprintf(f, "exit: status %d\n", WEXITSTATUS(wstatus));
    }
    if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGSYS) {
        /* the seccomp filter's default action (sandbox.c): libkeel's handler names the call */
        const keel_wire_crash *c = &a->crash;
        if (a->have_crash && c->signo == SIGSYS && c->code == SYS_SECCOMP && c->sys_nr >= 0) {
            char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, c->sys_nr);
            fprintf(f, "seccomp: denied system call %d (%s)\n", (int)c->sys_nr,
                    name ? name : "unknown");
            free(name);
        } else {
            fprintf(f, "seccomp: denied system call (which one is unknown: the program has no "
                       "libkeel crash handler)\n");
        }
    }
    fprintf(f, "uptime_ms: %lld\nrestarts: %u\n", (long long)(sv_now_ms() - a->started_ms),
            a->restarts);
    if (a->have_crash) {
        const keel_wire_crash *c = &a->crash;
        const char *abbr = sigabbrev_np(c->signo);
        fprintf(f, "signal: SIG%s (%s) code %d (%s)", abbr ? abbr : "?", strsignal(c->signo),
                c->code, code_name(c->signo, c->code));
        if (c->code > 0) { /* a fault: si_addr is the address; for kill/raise it is a pid */
            fprintf(f, " fault address 0x%llx", (unsigned long long)c->addr);
        }
        fputc('\n', f);
        fprintf(f, "registers:\n");
        for (uint32_t i = 0; i < c->nregs && i < KEEL_WIRE_CRASH_REGS; i++) {
            fprintf(f, "  %-7s 0x%016llx%s", reg_names[i] ? reg_names[i] : "r?",
                    (unsigned long long)c->regs[i], i % 3 == 2 ? "\n" : "");
        }
        fprintf(f, "\nstack:\n");
        for (uint32_t i = 0; i < c->nframes && i < KEEL_WIRE_CRASH_FRAMES; i++) {
            frame_line(f, a, (int)i, c->frames[i]);
        }
    } else {
        fprintf(f, "signal: none reported by the app (no libkeel crash handler ran)\n");
    }
    fprintf(f, "last log lines:\n");
    uint32_t n = a->log_next < SV_LOG_LINES ? a->log_next : SV_LOG_LINES;
    for (uint32_t i = a->log_next - n; i != a->log_next; i++) {
        fprintf(f, "  %s\n", a->log[i % SV_LOG_LINES]);
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        sv_logf("%s: cannot write crash report %s", a->m.name, path);
        (void)unlink(tmp);
        return 0;
    }
    a->have_crash = false;
    return seq;
}

static int cmp_desc(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

int sv_crash_list(const sv_daemon *d, const char *name, int count, int fd)
{
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/crashes/%s", d->cfg.state_dir, name);
    DIR *dp = opendir(dir);
    if (!dp) {
        return 0;
    }
    uint32_t seqs[1024] = {0};
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < sizeof seqs / sizeof seqs[0]) {
        char *end;
        unsigned long v = strtoul(e->d_name, &end, 10);
        if (end != e->d_name && strcmp(end, ".txt") == 0) {
            seqs[n++] = (uint32_t)v;
        }
    }
    closedir(dp);
    qsort(seqs, n, sizeof seqs[0], cmp_desc);
    int shown = 0;
    for (size_t i = 0; i < n && shown < count; i++, shown++) {
        char p[PATH_MAX + 128], buf[4096];
        snprintf(p, sizeof p, "%s/%06u.txt", dir, seqs[i]);
        FILE *f = fopen(p, "r");
        if (!f) {
            continue;
        }
        size_t r;
        while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
            ssize_t ignored = write(fd, buf, r);
            (void)ignored;
        }
        fclose(f);
        ssize_t ignored = write(fd, "\n", 1);
        (void)ignored;
    }
    return shown;
}
