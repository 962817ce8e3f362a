/* The seccomp filter every sandboxed component gets: an allow list.
 *
 * Default action: SCMP_ACT_TRAP. A system call not listed here is not executed; the kernel
 * sends SIGSYS with the call's number, libkeel's crash handler passes the number to keeld and
 * the process dies of SIGSYS, so the crash report reads "denied system call 321 (bpf)". A
 * program without libkeel (an RT loader such as QEMU) dies of SIGSYS all the same; its report
 * says a call was denied without knowing which. Trap rather than EPERM because a refused call
 * is either an attack or a bug in the list, and both should be loud; trap rather than
 * KILL_PROCESS because only a signal the process sees can carry the number into the report.
 * A program that catches SIGSYS itself and carries on gains nothing: the call never ran.
 *
 * How the list was found (docs/security.md, "The seccomp allow list"): keeld was run under
 * `strace -f -ff` through every supervisor integration test and the demo under keeld, and every
 * call each sandboxed process made after its filter was loaded was collected: glibc start-up and
 * the dynamic loader, libkeel, the test apps (tests/integration/supervisor/apps), keel-envmon,
 * keel-sim (the sim-port RT loader), /bin/sh and qemu-system-arm (the Cortex-M loader); and
 * keel-gateway (run under keeld by integration.gateway_keeld, libcurl and TLS over a tunnel
 * included: a call outside the list would kill it there). The
 * traced calls are in the groups below; a few more are added where the C library picks
 * between equivalent calls by version or architecture (stat/fstat/newfstatat/statx, open/openat,
 * select/pselect6/poll/ppoll, epoll_wait/epoll_pwait), so a different libc does not trip the
 * filter. Names this architecture does not have (open on aarch64, mmap2 on x86_64) are skipped
 * when the filter is built, so one list serves x86_64, aarch64 and 32-bit ARM.
 *
 * A few calls are refused with an errno instead, because a caller handles the error: socket()
 * gets EACCES (an app has exactly the sockets keeld handed it), clone3() and io_uring_setup()
 * get ENOSYS (glibc falls back to clone, QEMU to its thread pool), and clone() with any
 * namespace flag traps like an unlisted call (a nested-sandbox escape attempt).
 *
 * connect() returns 0 and does nothing (SCMP_ACT_ERRNO(0): the kernel never runs it). Every
 * socket an app holds is already connected: keeld's tunnels and channels, the SDK socket, and
 * socketpair()'s pairs (socket() is refused, bind/listen/accept are not listed), so a real
 * connect() could only fail with EISCONN, or reach nothing in the app's empty network
 * namespace. It is answered rather than trapped because libcurl 7.88 (Debian 12) calls
 * connect() on a socket handed to it through CURLOPT_OPENSOCKETFUNCTION even when
 * CURLOPT_SOCKOPTFUNCTION says CURL_SOCKOPT_ALREADY_CONNECTED (curl issue #10626, fixed
 * upstream by PR #10648), and gives up on EISCONN; with 0 it carries on over the tunnel, so an
 * app can use libcurl (and TLS) over a socket keeld connected. What this allows: nothing new.
 * The socket stays connected to the peer keeld chose; the address passed is never read.
 * Calls with side effects outside the app (mount, ptrace, bpf, unshare, setns, keyctl, module
 * loading, reboot, clock setting, perf, userfaultfd, uid changes, ...) are simply not listed.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>

#include "supervisor.h"

static const char *const allowed[] = {
    /* process start-up: the kernel's exec, glibc's dynamic loader and libc initialisation */
    "execve", "execveat", "brk", "arch_prctl", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "prlimit64", "getrlimit", "setrlimit", "getrandom", "uname",
    "sysinfo", "exit", "exit_group",
    /* memory */
    "mmap", "mprotect", "munmap", "mremap", "madvise", "msync", "membarrier", "memfd_create",
    "get_mempolicy", "set_mempolicy", /* QEMU */
    /* files: only what the private root holds (the package read-only, /data, /tmp) */
    "openat", "open", "openat2", "creat", "close", "close_range", "read", "write", "readv",
    "writev", "pread64", "pwrite64", "preadv", "pwritev", "lseek", "newfstatat", "fstat", "stat",
    "lstat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2", "getdents64",
    "getcwd", "chdir", "fchdir", "readlink", "readlinkat", "mkdir", "mkdirat", "rmdir", "unlink",
    "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
    "chmod", "fchmod", "fchmodat", "umask", "utimensat", "ftruncate", "truncate", "fallocate",
    "fsync", "fdatasync", "flock", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "ioctl",
    /* SQLite (keel-gateway's and keel-envmon's stores) gives its journal the database's owner;
     * without CAP_CHOWN only a no-op change to the app's own uid can succeed */
    "fchown", "fchownat", "chown", "lchown",
    /* time */
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    "timerfd_create", "timerfd_settime", "timerfd_gettime", "setitimer", "getitimer", "alarm",
    "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    "getcpu",
    /* waiting on fds */
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd",
    "signalfd4",
    /* the sockets keeld handed over (SDK socket, tunnels, channel sockets): use, never create
     * (socket() is refused below; socketpair makes only connected AF_UNIX pairs) */
    "sendmsg", "recvmsg", "sendto", "recvfrom", "sendmmsg", "recvmmsg", "shutdown",
    "getsockopt", "setsockopt", "getsockname", "getpeername", "socketpair",
    /* signals */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigpending", "sigaltstack", "kill", "tgkill", "tkill", "pause",
    /* processes and threads (clone: without namespace flags, below) */
    "fork", "vfork", "wait4", "waitid", "futex", "futex_waitv", "sched_yield",
    "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_getscheduler",
    "getpriority", "setpriority", "getrusage", "times", "pidfd_open", "pidfd_send_signal",
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "getpgrp", "getpgid", "getsid", "setpgid", "setsid", "capget",
    "prctl",
    /* libkeel: checked copies into the app's own memory; the kernel's ptrace-access check
     * confines them to processes of the app's uid, and no_new_privs to that app */
    "process_vm_readv", "process_vm_writev",
    /* a filter of the app's own can only narrow this one (QEMU probes it) */
    "seccomp",
    /* 32-bit ARM spellings (absent on x86_64 and aarch64, skipped there) */
    "mmap2", "_llseek", "fstat64", "stat64", "lstat64", "fstatat64", "fcntl64", "statfs64",
    "fstatfs64", "ugetrlimit", "sigreturn", "send", "recv", "set_tls", "cacheflush",
    "clock_gettime64", "clock_getres_time64", "clock_nanosleep_time64", "ppoll_time64",
    "pselect6_time64", "futex_time64", "recvmmsg_time64", "rt_sigtimedwait_time64",
    "timerfd_settime64", "timerfd_gettime64", "utimensat_time64", "getuid32", "geteuid32",
    "getgid32", "getegid32", "getgroups32", "getresuid32", "getresgid32",
};

/* Every namespace flag clone() takes (CLONE_NEWTIME shares its bit with the exit signal in
 * clone()'s flags, and clone() cannot create a time namespace anyway). */
#define SV_CLONE_NS                                                                             \
    ((scmp_datum_t)(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
                    CLONE_NEWPID | CLONE_NEWNET))

void *sv_seccomp_build(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof allowed / sizeof allowed[0]; i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr == __NR_SCMP_ERROR || nr < 0) {
            continue; /* not a call of this architecture (negative: a pseudo-number) */
        }
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    /* threads and fork, never new namespaces */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, SV_CLONE_NS, 0));
    }
    /* clone3 passes its flags in memory a filter cannot read: "not implemented", and the C
     * library falls back to clone, whose flags the rule above sees */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    }
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0);
    }
    /* connect() on a socket that is already connected: success, no effect (see the top) */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(connect), 0);
    }
    /* no sockets: the only ones an app has are those keeld handed it */
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0);
    }
    if (rc != 0) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}
