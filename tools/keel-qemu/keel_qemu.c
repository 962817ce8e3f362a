/* keel-qemu: the RT loader that runs Cortex-M firmware under QEMU for keeld.
 *
 * keeld runs it as the exec of a package of kind "rt" (docs/apps.md, "Real-time firmware") and
 * hands it one channel end per paired app on $KEEL_RT_CHANNEL_FD. QEMU's guest cannot map a
 * memfd or read an eventfd, so the loader bridges:
 *  - the board's 16 MiB PSRAM (0x21000000 on mps2-an386) is a file in the sandbox's /tmp that
 *    QEMU backs with share=on and the loader maps too. At its start the loader writes the
 *    channel table (keel/icc.h), then one fresh channel region per end, with the end's ring
 *    size, message limit and component IDs; the firmware finds channel i through the table;
 *  - messages are copied between keeld's region (the loader plays the RT side there) and the
 *    guest's (the loader plays the connected core), frame by frame through the ring core, which
 *    checks every index and length: the guest is trusted no more than a real RT core. A guest
 *    that corrupts its ring ends the run (exit 6), a forged sender is dropped and logged;
 *  - doorbells: into the guest, a byte on UART1's character device (one end of a socketpair
 *    QEMU gets as an fd: keeld's sandbox allows no socket(); the firmware's icc driver takes
 *    its RX interrupt); out of the guest, a byte it writes to UART1. Because QEMU's TCG emits
 *    no host fence for a guest DMB, a doorbell can be lost (icc_bell_uart_rtos.c): the loader
 *    also looks at every ring each --poll-ms, so a lost doorbell costs one period, not a hang;
 *  - heartbeat: the firmware bumps the table's counter (board_heartbeat); each change is
 *    forwarded to keeld as a record on $KEEL_APP_FD (at most every --beat-ms). The loader never
 *    beats on its own: firmware stuck in a loop inside a live QEMU goes silent, and keeld's
 *    heartbeat check catches it;
 *  - QEMU's death is the loader's: it exits with QEMU's status (the firmware's board_exit code:
 *    122 after a HardFault), so keeld records a crash and restarts the component, pairing the
 *    channels afresh. QEMU gets SIGKILL if the loader dies first (PR_SET_PDEATHSIG).
 * QEMU's console (UART0) and its stderr come through a pipe the loader relays to its stdout
 * (which keeld keeps as the component's log) in whole lines, so the loader's own lines never
 * split one of the firmware's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel/icc.h"

#define PSRAM_BYTES (16u * 1024u * 1024u)

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_IO = 3, EXIT_GUEST_BROKE = 6 };

static const char usage[] =
    "usage: keel-qemu [options] FIRMWARE.elf [-- extra qemu-system-arm arguments]\n"
    "\n"
    "Runs Cortex-M firmware on QEMU's mps2-an386 as keeld's RT loader: the intercore channel\n"
    "ends keeld sends on $KEEL_RT_CHANNEL_FD are bridged into the guest's shared PSRAM (a\n"
    "channel table at 0x21000000, docs/intercore.md), and the firmware's heartbeat counter is\n"
    "forwarded to keeld on $KEEL_APP_FD. Without those variables the firmware runs alone.\n"
    "\n"
    "  --qemu PATH      the emulator (default: qemu-system-arm on PATH)\n"
    "  --icount         deterministic guest time (-icount shift=0; about 3x slower)\n"
    "  --poll-ms N      look at every ring this often, for doorbells QEMU lost (default 5)\n"
    "  --beat-ms N      forward a heartbeat to keeld at most this often (default 50)\n"
    "  --shm-dir DIR    where the PSRAM file goes (default: $TMPDIR, else /tmp)\n"
    "  -h, --help       this text\n"
    "\n"
    "Exit: QEMU's exit status (the firmware's board_exit code; 122 after a HardFault),\n"
    "1 QEMU could not start or was killed, 2 usage, 3 i/o (no channel end, no memory file),\n"
    "6 the firmware corrupted a channel.\n";

typedef struct bridge {
    keel_icc_end end; /* keeld's end: region memfd, doorbells */
    void *host_mem;   /* keeld's region, mapped */
    size_t host_size;
    keel_icc_ring host;  /* keeld's region, as the RT side */
    keel_icc_ring guest; /* the guest's region, as the connected core (side A) */
    uint8_t *to_guest;   /* one message taken from keeld's ring, not yet in the guest's */
    uint8_t *to_host;    /* one message taken from the guest's ring, not yet in keeld's */
    keel_icc_msg m_guest, m_host;
    bool pend_guest, pend_host;
    uint32_t forged;
} bridge;

static bridge chans[KEEL_ICC_TABLE_MAX];
static unsigned nchans;
static int bell = -1; /* the guest's doorbell UART, connected by QEMU */
static int beat_fd = -1;
static pid_t qemu = -1;
static char shm_path[512];
static int console = -1; /* QEMU's stdout and stderr */
static char cline[1024];
static size_t clen;

/* Relays QEMU's output in whole lines (a line longer than the buffer goes in pieces). final:
 * QEMU is gone, read to the end and flush what is left. */
static void relay_console(bool final)
{
    while (console >= 0) {
        ssize_t k = read(console, cline + clen, sizeof cline - clen);
        if (k <= 0) {
            if (k == 0 || final) {
                close(console);
                console = -1;
            }
            break;
        }
        clen += (size_t)k;
        char *nl;
        while ((nl = memchr(cline, '\n', clen)) != NULL) {
            size_t n = (size_t)(nl - cline) + 1;
            fwrite(cline, 1, n, stdout);
            memmove(cline, cline + n, clen - n);
            clen -= n;
        }
        if (clen == sizeof cline) {
            fwrite(cline, 1, clen, stdout);
            clen = 0;
        }
        fflush(stdout);
    }
    if (final && clen > 0) {
        fwrite(cline, 1, clen, stdout);
        fputc('\n', stdout);
        clen = 0;
        fflush(stdout);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("keel-qemu: ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static void cleanup_files(void)
{
    if (shm_path[0]) {
        (void)unlink(shm_path);
        shm_path[0] = '\0';
    }
}

static void ring_guest(void)
{
    if (bell >= 0) {
        (void)send(bell, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}

static void ring_host(bridge *b)
{
    uint64_t one = 1;
    ssize_t n = write(b->end.bell_out, &one, sizeof one);
    (void)n; /* a full eventfd is already rung */
}

/* Receives the ends keeld sent (one per SEQPACKET record) until the end of the stream. */
static int take_ends(int sock)
{
    for (;;) {
        keel_icc_end e;
        keel_icc_err rc = keel_icc_end_recv(sock, &e);
        if (rc == KEEL_ICC_ERR_PEER_GONE) {
            return 0; /* keeld closed its side: that was all */
        }
        if (rc != KEEL_ICC_OK) {
            say("receiving a channel end: %s", keel_icc_err_name(rc));
            return -1;
        }
        if (nchans == KEEL_ICC_TABLE_MAX) {
            say("more than %u channel ends: the rest are ignored", KEEL_ICC_TABLE_MAX);
            keel_icc_end_close(&e);
            continue;
        }
        chans[nchans++].end = e;
    }
}

/* Maps keeld's region of each end, attaches as the RT side, and lays out the guest's region
 * with the same ring size, message limit and IDs. The table's magic goes in last. */
static int lay_out(uint8_t *psram)
{
    keel_icc_table *t = (keel_icc_table *)psram;
    uint32_t off = KEEL_ICC_TABLE_BYTES;
    for (unsigned i = 0; i < nchans; i++) {
        bridge *b = &chans[i];
        struct stat st;
        if (fstat(b->end.mem, &st) != 0 || st.st_size <= 0) {
            say("channel %u: region: %s", i, strerror(errno));
            return -1;
        }
        b->host_size = (size_t)st.st_size;
        b->host_mem = mmap(NULL, b->host_size, PROT_READ | PROT_WRITE, MAP_SHARED, b->end.mem, 0);
        if (b->host_mem == MAP_FAILED) {
            say("channel %u: mmap: %s", i, strerror(errno));
            return -1;
        }
        keel_icc_err rc = keel_icc_ring_attach(&b->host, b->host_mem, b->host_size, b->end.side);
        if (rc != KEEL_ICC_OK) {
            say("channel %u: keeld's region: %s", i, keel_icc_err_name(rc));
            return -1;
        }
        keel_icc_layout l = {.ring_bytes = b->host.ring_bytes, .max_msg = b->host.max_msg};
        /* the guest is side B and speaks as the RT component; the loader, side A, as the app */
        l.id_a = b->host.peer;
        l.id_b = b->host.self;
        uint32_t need = keel_icc_region_bytes(l.ring_bytes);
        if (need == 0 || need > PSRAM_BYTES - off) {
            say("channel %u: %u ring bytes do not fit the PSRAM", i, (unsigned)l.ring_bytes);
            return -1;
        }
        rc = keel_icc_region_init(psram + off, need, &l);
        if (rc == KEEL_ICC_OK) {
            rc = keel_icc_ring_attach(&b->guest, psram + off, need, KEEL_ICC_SIDE_A);
        }
        if (rc != KEEL_ICC_OK) {
            say("channel %u: guest region: %s", i, keel_icc_err_name(rc));
            return -1;
        }
        b->to_guest = malloc(l.max_msg);
        b->to_host = malloc(l.max_msg);
        if (!b->to_guest || !b->to_host) {
            return -1;
        }
        t->chan[i].offset = off;
        t->chan[i].size = need;
        off += (need + 63u) & ~63u;
    }
    t->version = KEEL_ICC_TABLE_VERSION;
    t->count = nchans;
    t->total = PSRAM_BYTES;
    atomic_store_explicit(&t->heartbeat, 0, memory_order_relaxed);
    atomic_store_explicit(&t->ready, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    t->magic = KEEL_ICC_TABLE_MAGIC;
    return 0;
}

/* keeld's ring -> the guest's. Returns false if the channel cannot go on. */
static bool pump_to_guest(bridge *b, unsigned i)
{
    for (;;) {
        bool ring = false;
        if (!b->pend_guest) {
            keel_icc_err rc =
                keel_icc_ring_recv(&b->host, &b->m_guest, b->to_guest, b->host.max_msg, &ring);
            if (ring) {
                ring_host(b);
            }
            if (rc == KEEL_ICC_ERR_WOULD_BLOCK) {
                return true;
            }
            if (rc == KEEL_ICC_ERR_FORGED) {
                continue;
            }
            if (rc != KEEL_ICC_OK) {
                say("channel %u: from the app: %s", i, keel_icc_err_name(rc));
                return false;
            }
            b->pend_guest = true;
        }
        keel_icc_err rc =
            keel_icc_ring_send(&b->guest, b->m_guest.type, b->m_guest.flags, b->m_guest.corr,
                               b->to_guest, b->m_guest.len, NULL, &ring);
        if (ring) {
            ring_guest();
        }
        if (rc == KEEL_ICC_ERR_WOULD_BLOCK) {
            (void)keel_icc_ring_arm_tx(&b->guest, b->m_guest.len); /* rung when it drains */
            return true;
        }
        if (rc != KEEL_ICC_OK) {
            say("channel %u: to the firmware: %s", i, keel_icc_err_name(rc));
            return false;
        }
        b->pend_guest = false;
    }
}

/* The guest's ring -> keeld's. Everything the guest wrote is checked by the ring core. */
static bool pump_to_host(bridge *b, unsigned i)
{
    for (;;) {
        bool ring = false;
        if (!b->pend_host) {
            keel_icc_err rc =
                keel_icc_ring_recv(&b->guest, &b->m_host, b->to_host, b->guest.max_msg, &ring);
            if (ring) {
                ring_guest();
            }
            if (rc == KEEL_ICC_ERR_WOULD_BLOCK) {
                return true;
            }
            if (rc == KEEL_ICC_ERR_FORGED) {
                if (b->forged++ == 0) {
                    say("channel %u: the firmware sent a frame under another sender: dropped", i);
                }
                continue;
            }
            if (rc != KEEL_ICC_OK) {
                say("channel %u: the firmware broke its ring: %s", i, keel_icc_err_name(rc));
                return false;
            }
            b->pend_host = true;
        }
        keel_icc_err rc =
            keel_icc_ring_send(&b->host, b->m_host.type, b->m_host.flags, b->m_host.corr,
                               b->to_host, b->m_host.len, NULL, &ring);
        if (ring) {
            ring_host(b);
        }
        if (rc == KEEL_ICC_ERR_WOULD_BLOCK) {
            (void)keel_icc_ring_arm_tx(&b->host, b->m_host.len);
            return true;
        }
        if (rc != KEEL_ICC_OK) {
            say("channel %u: to the app: %s", i, keel_icc_err_name(rc));
            return false;
        }
        b->pend_host = false;
    }
}

/* One pass over every channel; false if the guest broke one. *again: data arrived while the
 * loader armed its waits, so it must not sleep. */
static bool pump_all(bool *again)
{
    *again = false;
    for (unsigned i = 0; i < nchans; i++) {
        bridge *b = &chans[i];
        if (!pump_to_guest(b, i) || !pump_to_host(b, i)) {
            return false;
        }
        /* announce our waits, then re-check: a message published meanwhile is seen now */
        if ((!b->pend_guest && !keel_icc_ring_arm_rx(&b->host)) ||
            (!b->pend_host && !keel_icc_ring_arm_rx(&b->guest))) {
            *again = true;
        }
    }
    return true;
}

/* QEMU runs with the guest's doorbell UART on `bell_end` (one end of a socketpair: the sandbox
 * allows no socket(), and a connected pair needs no name), passed as its fd 3. */
static pid_t spawn_qemu(const char *qemu_exe, const char *elf, bool icount, char **extra,
                        int nextra, int bell_end, int out)
{
    char chardev[64], backend[700];
    snprintf(chardev, sizeof chardev, "socket,id=bell,fd=3");
    snprintf(backend, sizeof backend, "memory-backend-file,id=ram,size=16M,mem-path=%s,share=on",
             shm_path);
    char *argv[40 + 64];
    int n = 0;
    char *fixed[] = {(char *)qemu_exe,
                     "-M",
                     "mps2-an386",
                     "-nographic",
                     "-monitor",
                     "none",
                     "-serial",
                     "stdio",
                     "-chardev",
                     chardev,
                     "-serial",
                     "chardev:bell",
                     "-object",
                     backend,
                     "-machine",
                     "memory-backend=ram",
                     "-kernel",
                     (char *)elf,
                     "-semihosting-config",
                     "enable=on,target=native"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        argv[n++] = fixed[i];
    }
    if (icount) {
        argv[n++] = "-icount";
        argv[n++] = "shift=0";
    }
    for (int i = 0; i < nextra && n < (int)(sizeof argv / sizeof argv[0]) - 1; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    /* the child: QEMU dies with the loader, and inherits nothing but stdio */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(127);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) != 0 || dup2(out, 1) != 1 || dup2(out, 2) != 2) {
        _exit(127);
    }
    int b = dup(bell_end); /* a copy without FD_CLOEXEC */
    if (b < 0 || (b != 3 && dup2(b, 3) != 3)) {
        _exit(127);
    }
    (void)close_range(4, ~0u, 0);
    execvp(qemu_exe, argv);
    fprintf(stderr, "keel-qemu: %s: %s\n", qemu_exe, strerror(errno));
    _exit(127);
}

static int exit_of(int st)
{
    relay_console(true);
    if (WIFEXITED(st)) {
        say("QEMU exited with status %d", WEXITSTATUS(st));
        return WEXITSTATUS(st);
    }
    say("QEMU killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return EXIT_FAIL;
}

/* Ends QEMU (if it runs) and returns its exit code, or `code` if it was still running. */
static int stop_qemu(int code)
{
    if (qemu > 0) {
        int st;
        if (waitpid(qemu, &st, WNOHANG) == qemu) {
            code = exit_of(st);
        } else {
            kill(qemu, SIGKILL);
            (void)waitpid(qemu, &st, 0);
            relay_console(true);
        }
        qemu = -1;
    }
    cleanup_files();
    return code;
}

static bool parse_ms(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > 60000) {
        return false;
    }
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"qemu", required_argument, NULL, 'q'},
                                         {"icount", no_argument, NULL, 'i'},
                                         {"poll-ms", required_argument, NULL, 'p'},
                                         {"beat-ms", required_argument, NULL, 'b'},
                                         {"shm-dir", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *qemu_exe = "qemu-system-arm", *dir = getenv("TMPDIR");
    bool icount = false;
    int poll_ms = 5, beat_ms = 50, o;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 'q':
            qemu_exe = optarg;
            break;
        case 'i':
            icount = true;
            break;
        case 'p':
        case 'b':
            if (!parse_ms(optarg, o == 'p' ? &poll_ms : &beat_ms)) {
                fprintf(stderr, "keel-qemu: --%s: \"%s\" is not 1..60000 ms\n",
                        o == 'p' ? "poll-ms" : "beat-ms", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *elf = argv[optind++];
    if (optind < argc && strcmp(argv[optind], "--") == 0) {
        optind++;
    }
    if (access(elf, R_OK) != 0) {
        fprintf(stderr, "keel-qemu: %s: %s\n", elf, strerror(errno));
        return EXIT_IO;
    }
    if (!dir || !*dir) {
        dir = "/tmp";
    }
    const char *env = getenv("KEEL_RT_CHANNEL_FD");
    if (env) {
        int sock = atoi(env);
        int rc = take_ends(sock);
        close(sock);
        if (rc != 0) {
            return EXIT_IO;
        }
    }
    env = getenv("KEEL_APP_FD");
    beat_fd = env ? atoi(env) : -1;

    /* the PSRAM file, the table and the guest's regions, before QEMU maps them */
    snprintf(shm_path, sizeof shm_path, "%s/keel-qemu-XXXXXX", dir);
    int fd = mkostemp(shm_path, O_CLOEXEC);
    if (fd < 0) {
        say("%s: %s", shm_path, strerror(errno));
        shm_path[0] = '\0';
        return EXIT_IO;
    }
    uint8_t *psram = MAP_FAILED;
    if (ftruncate(fd, PSRAM_BYTES) == 0) {
        psram = mmap(NULL, PSRAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    close(fd);
    if (psram == MAP_FAILED || lay_out(psram) != 0) {
        say("cannot lay out the shared memory in %s", dir);
        cleanup_files();
        return EXIT_IO;
    }
    keel_icc_table *table = (keel_icc_table *)psram;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    int sp[2], op[2];
    if (sfd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0 ||
        pipe2(op, O_CLOEXEC) != 0) {
        say("signalfd/socketpair/pipe: %s", strerror(errno));
        cleanup_files();
        return EXIT_IO;
    }
    fflush(stdout);
    qemu = spawn_qemu(qemu_exe, elf, icount, argv + optind, argc - optind, sp[1], op[1]);
    close(sp[1]);
    close(op[1]);
    console = op[0];
    (void)fcntl(console, F_SETFL, O_NONBLOCK);
    bell = sp[0];
    (void)fcntl(bell, F_SETFL, O_NONBLOCK);
    if (qemu < 0) {
        say("fork: %s", strerror(errno));
        cleanup_files();
        return EXIT_FAIL;
    }
    say("%u channel%s, firmware %s, QEMU pid %d%s", nchans, nchans == 1 ? "" : "s", elf, (int)qemu,
        icount ? ", deterministic guest time (-icount shift=0)" : "");

    struct pollfd p[3 + KEEL_ICC_TABLE_MAX];
    uint32_t last_beat_count = 0;
    int64_t last_beat_ms = 0;
    bool ready = false;
    for (;;) {
        bool again;
        if (!pump_all(&again)) {
            return stop_qemu(EXIT_GUEST_BROKE);
        }
        uint32_t hb = atomic_load_explicit(&table->heartbeat, memory_order_relaxed);
        int64_t now = now_ms();
        if (hb != last_beat_count && now - last_beat_ms >= beat_ms) {
            if (beat_fd >= 0) {
                (void)send(beat_fd, ".", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            last_beat_count = hb;
            last_beat_ms = now;
        }
        if (!ready && atomic_load_explicit(&table->ready, memory_order_acquire) != 0) {
            ready = true;
            cleanup_files(); /* QEMU has the file mapped: nothing else needs its name */
            say("firmware attached its channels");
        }
        p[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = bell, .events = POLLIN};
        for (unsigned i = 0; i < nchans; i++) {
            p[2 + i] = (struct pollfd){.fd = chans[i].end.bell_in, .events = POLLIN};
        }
        p[2 + nchans] = (struct pollfd){.fd = console, .events = POLLIN};
        int n = poll(p, 3 + nchans, again ? 0 : poll_ms);
        if (n <= 0) {
            continue;
        }
        if (p[2 + nchans].revents) {
            relay_console(false);
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                    say("stopping");
                    return stop_qemu(0);
                }
            }
            int st;
            if (waitpid(qemu, &st, WNOHANG) == qemu) {
                qemu = -1;
                cleanup_files();
                return exit_of(st);
            }
        }
        if (p[1].revents) {
            char buf[256];
            ssize_t k = recv(bell, buf, sizeof buf, MSG_DONTWAIT);
            if (k == 0) {
                /* QEMU closed the UART: it is exiting; its status comes with SIGCHLD */
                close(bell);
                bell = -1;
                int st;
                if (waitpid(qemu, &st, 0) == qemu) {
                    qemu = -1;
                    cleanup_files();
                    return exit_of(st);
                }
                return stop_qemu(EXIT_FAIL);
            }
        }
        for (unsigned i = 0; i < nchans; i++) {
            if (p[2 + i].revents) {
                uint64_t v;
                ssize_t k = read(chans[i].end.bell_in, &v, sizeof v);
                (void)k;
            }
        }
    }
}
