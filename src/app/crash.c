/* libkeel's crash handler. On a fatal signal it sends keeld one fixed-size record (signal,
 * fault address, registers, raw return addresses, and where each loaded object sits) and then
 * lets the signal kill the process, so keeld sees both the record and the real wait status.
 * keeld does the symbolising from the ELF files: nothing here allocates or takes a lock.
 *
 * Everything the handler needs is prepared at keel_app_open(): an alternate signal stack (a
 * stack overflow still gets a report), backtrace() called once so libgcc is loaded, and the
 * table of loaded objects from dl_iterate_phdr. */
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

/* si_code of a SIGSYS sent by a seccomp filter (the kernel's asm-generic/siginfo.h; glibc's
 * headers do not carry it) */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

#include "app_private.h"
#include "wire.h"

/* SIGSYS: a system call outside keeld's seccomp allow list (the filter traps); the record
 * carries the call's number. */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
#define NSIG_CRASH (sizeof crash_signals / sizeof crash_signals[0])

static keel_app *g_crash_app;
static keel_wire_crash g_crash; /* static: the alternate stack is small */
static uint8_t g_altstack[64 * 1024];
static struct sigaction g_old[NSIG_CRASH];

static int module_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (g_crash.nmodules >= KEEL_WIRE_CRASH_MODULES) {
        return 1;
    }
    keel_wire_module *m = &g_crash.modules[g_crash.nmodules];
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) {
            continue;
        }
        uint64_t s = info->dlpi_addr + ph->p_vaddr;
        if (s < lo) {
            lo = s;
        }
        if (s + ph->p_memsz > hi) {
            hi = s + ph->p_memsz;
        }
    }
    if (hi == 0) {
        return 0;
    }
    m->base = info->dlpi_addr;
    m->start = lo;
    m->end = hi;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    size_t n = strlen(name);
    if (n >= sizeof m->path) {
        n = sizeof m->path - 1;
    }
    memcpy(m->path, name, n);
    m->path[n] = '\0';
    g_crash.nmodules++;
    return 0;
}

static void fill_regs(const ucontext_t *uc)
{
#if defined(__x86_64__)
    g_crash.nregs = KEEL_WIRE_CRASH_REGS;
    for (int i = 0; i < KEEL_WIRE_CRASH_REGS && i < NGREG; i++) {
        g_crash.regs[i] = (uint64_t)uc->uc_mcontext.gregs[i];
    }
    g_crash.pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    g_crash.nregs = KEEL_WIRE_CRASH_REGS;
    for (int i = 0; i < KEEL_WIRE_CRASH_REGS - 2; i++) {
        g_crash.regs[i] = uc->uc_mcontext.regs[i];
    }
    g_crash.regs[KEEL_WIRE_CRASH_REGS - 2] = uc->uc_mcontext.sp;
    g_crash.regs[KEEL_WIRE_CRASH_REGS - 1] = uc->uc_mcontext.pc;
    g_crash.pc = uc->uc_mcontext.pc;
#else
    (void)uc;
    g_crash.nregs = 0;
#endif
}

static void on_crash(int signo, siginfo_t *si, void *ctx)
{
    int saved = errno;
    if (g_crash_app && g_crash_app->fd > 0) {
        g_crash.signo = signo;
        g_crash.code = si ? si->si_code : 0;
        g_crash.addr = si ? (uint64_t)(uintptr_t)si->si_addr : 0;
        g_crash.sys_nr = signo == SIGSYS && si && si->si_code == SYS_SECCOMP ? si->si_syscall : -1;
        fill_regs((const ucontext_t *)ctx);
        void *frames[KEEL_WIRE_CRASH_FRAMES + 8];
        int n = backtrace(frames, (int)(sizeof frames / sizeof frames[0]));
        /* Drop the handler's own frames: start at the interrupted pc when the unwinder found
         * it (it walks through the signal frame), else keep everything. */
        int first = 0;
        for (int i = 0; i < n; i++) {
            if ((uint64_t)(uintptr_t)frames[i] == g_crash.pc) {
                first = i;
                break;
            }
        }
        g_crash.nframes = 0;
        for (int i = first; i < n && g_crash.nframes < KEEL_WIRE_CRASH_FRAMES; i++) {
            g_crash.frames[g_crash.nframes++] = (uint64_t)(uintptr_t)frames[i];
        }
        struct iovec part = {&g_crash, sizeof g_crash};
        (void)keel_app_call(g_crash_app, KEEL_WIRE_CRASH, &part, 1, NULL, 0, NULL, NULL);
    }
    /* Die of the same signal: a fault re-executes and kills under SIG_DFL; a sent or raised
     * signal, and a seccomp trap (the call is skipped, not retried), is raised again and
     * delivered when the handler returns. */
    signal(signo, SIG_DFL);
    if (!si || si->si_code <= 0 || signo == SIGSYS) {
        raise(signo);
    }
    errno = saved;
}

void keel_app_crash_install(keel_app *app)
{
    g_crash_app = app;
    memset(&g_crash, 0, sizeof g_crash);
    dl_iterate_phdr(module_cb, NULL);
    void *warm[2];
    (void)backtrace(warm, 2); /* loads the unwinder now, not inside the handler */
    stack_t ss = {.ss_sp = g_altstack, .ss_size = sizeof g_altstack};
    sigaltstack(&ss, NULL);
    for (size_t i = 0; i < NSIG_CRASH; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_crash;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(crash_signals[i], &sa, &g_old[i]);
    }
}

void keel_app_crash_uninstall(void)
{
    for (size_t i = 0; i < NSIG_CRASH; i++) {
        sigaction(crash_signals[i], &g_old[i], NULL);
    }
    g_crash_app = NULL;
}
