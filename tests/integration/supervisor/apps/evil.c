/* The misbehaving-app suite, one binary: argv[1] picks the misbehaviour. Each mode logs what
 * it tried and what happened, so the test can assert both keeld's reaction and the app's
 * view. Modes: null, abort, loop, forkbomb, memhog, socket, peek PATH..., forge, badptr,
 * sys NAME|NUMBER.
 * This program is hostile on purpose: it writes raw wire messages (src/app/wire.h) to keeld. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "keel/app.h"
#include "wire.h"

static keel_app *g_app;
static const uint64_t g_readonly[64] = {1}; /* .rodata: mapped, not writable */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        if (keel_app_log(g_app, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) != KEEL_APP_OK) {
            return; /* nowhere to report it */
        }
    }
}

static void idle_forever(void)
{
    for (;;) {
        if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
            /* keeld gone: keep idling, it kills us */
        }
        poll(NULL, 0, 50);
    }
}

__attribute__((noinline)) static void crash_null_deref(void)
{
    /* pointer and pointee volatile: the compiler can neither know the pointer is NULL nor drop
     * the store (with either alone, gcc -O2 deletes it and the app lives on) */
    volatile int *volatile p = NULL;
    *p = 42; /* cppcheck-suppress nullPointer ; the point of this mode */
}

__attribute__((noinline)) static void crash_abort(void)
{
    abort();
}

__attribute__((noinline)) static void spin_forever(void)
{
    volatile unsigned long n = 0;
    for (;;) {
        n++;
    }
}

static void forkbomb(void)
{
    int forks = 0, err = 0;
    for (int i = 0; i < 10000; i++) {
        pid_t p = fork();
        if (p == 0) {
            /* children only wait: the limit, not their behaviour, is under test */
            for (;;) {
                pause();
            }
        }
        if (p < 0) {
            err = errno;
            break;
        }
        forks++;
    }
    say("forkbomb: %d forks, then %s", forks, err ? strerror(err) : "no refusal");
    idle_forever();
}

static void memhog(void)
{
    size_t mib = 0;
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) {
            say("memhog: malloc refused after %zu MiB", mib);
            abort();
        }
        memset(p, 0xa5, 1 << 20);
        mib++;
        if (mib % 16 == 0) {
            say("memhog: %zu MiB", mib);
        }
    }
}

static void try_socket(void)
{
    int fams[] = {AF_INET, AF_INET6, AF_UNIX, AF_NETLINK};
    const char *names[] = {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"};
    for (int i = 0; i < 4; i++) {
        int s = socket(fams[i], SOCK_STREAM, 0);
        if (s >= 0) {
            say("socket %s: ALLOWED", names[i]);
            close(s);
        } else {
            say("socket %s: denied (%s)", names[i], strerror(errno));
        }
    }
}

static void peek(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd >= 0) {
            char b[64];
            ssize_t n = read(fd, b, sizeof b);
            say("peek %s: READ %zd bytes", argv[i], n);
            close(fd);
        } else {
            say("peek %s: denied (%s)", argv[i], strerror(errno));
        }
    }
}

/* Sends raw bytes as one message and returns keeld's status (or -1 when none came). */
static int raw(const void *msg, size_t n)
{
    int fd = keel_app_fd(g_app);
    if (send(fd, msg, n, 0) != (ssize_t)n) {
        return -2;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1) {
        return -1;
    }
    uint8_t buf[256];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < (ssize_t)sizeof(keel_wire_hdr)) {
        return -3;
    }
    keel_wire_hdr h;
    memcpy(&h, buf, sizeof h);
    return h.status;
}

static void forge(void)
{
    struct {
        keel_wire_hdr h;
        keel_wire_ring r;
    } reg = {{.op = KEEL_WIRE_NOTIFY_REGISTER, .seq = 900, .len = sizeof(keel_wire_ring)},
             {.addr = 0x10000, .size = 4096}};
    say("forge: ring at unmapped address -> %s", keel_app_status_name(raw(&reg, sizeof reg)));
    reg.r.addr = 0x10001;
    say("forge: misaligned ring -> %s", keel_app_status_name(raw(&reg, sizeof reg)));
    reg.r.addr = (uint64_t)(uintptr_t)&reg; /* mapped, but no ring header there */
    say("forge: ring without header -> %s", keel_app_status_name(raw(&reg, sizeof reg)));
    keel_wire_hdr bad = {.op = 999, .seq = 901};
    say("forge: unknown op -> %s", keel_app_status_name(raw(&bad, sizeof bad)));
    keel_wire_hdr lie = {.op = KEEL_WIRE_LOG, .seq = 902, .len = 4000};
    say("forge: length beyond the message -> %s", keel_app_status_name(raw(&lie, sizeof lie)));
    say("forge: 3-byte message -> %d", raw("abc", 3));

    /* A real ring, then forged behind keeld's back: indices that cannot be, then read-only. */
    long pg = sysconf(_SC_PAGESIZE);
    keel_app_ring *ring = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int wake;
    keel_app_status st = keel_app_notify_register(g_app, ring, (size_t)pg, &wake);
    say("forge: real ring -> %s", keel_app_status_name(st));
    ring->tail = ring->head + 100000;
    say("forge: tail corrupted; ready");
    idle_forever();
}

/* The app's own MQTT and HTTP through keeld's tunnels: raw protocol bytes over the fd keeld
 * hands over (the app cannot open a socket itself). */
static bool put_all(int fd, const void *p, size_t n)
{
    return write(fd, p, n) == (ssize_t)n;
}

static void tunnel(int argc, char **argv)
{
    int fd = -1;
    keel_app_status st = keel_app_cloud_open(g_app, "mqtt", "broker", &fd);
    say("tunnel: mqtt open -> %s", keel_app_status_name(st));
    if (st == KEEL_APP_OK) {
        static const char id[] = "keel-tunnel";
        static const char topic[] = "keel/tunnel";
        static const char msg[] = "hello from the sandbox";
        uint8_t b[128];
        size_t n = 0;
        b[n++] = 0x10; /* CONNECT, MQTT 3.1.1, clean session */
        b[n++] = (uint8_t)(10 + 2 + sizeof id - 1);
        memcpy(b + n, "\x00\x04MQTT\x04\x02\x00\x3c", 10);
        n += 10;
        b[n++] = 0;
        b[n++] = sizeof id - 1;
        memcpy(b + n, id, sizeof id - 1);
        n += sizeof id - 1;
        uint8_t ack[4] = {0};
        bool ok = put_all(fd, b, n) && read(fd, ack, 4) == 4 && ack[0] == 0x20 && ack[3] == 0;
        n = 0;
        b[n++] = 0x31; /* PUBLISH, QoS 0, retained so a later subscriber sees it */
        b[n++] = (uint8_t)(2 + sizeof topic - 1 + sizeof msg - 1);
        b[n++] = 0;
        b[n++] = sizeof topic - 1;
        memcpy(b + n, topic, sizeof topic - 1);
        n += sizeof topic - 1;
        memcpy(b + n, msg, sizeof msg - 1);
        n += sizeof msg - 1;
        ok = ok && put_all(fd, b, n) && put_all(fd, "\xe0\x00", 2);
        say("tunnel: mqtt publish %s", ok ? "sent" : "FAILED");
        close(fd);
    }
    for (int i = 2; i < argc; i++) {
        st = keel_app_cloud_open(g_app, "http", argv[i], &fd);
        say("tunnel: http open %s -> %s", argv[i], keel_app_status_name(st));
        if (st != KEEL_APP_OK) {
            continue;
        }
        /* connect() elsewhere: keeld's filter answers 0 and the socket stays where keeld
         * connected it (libcurl 7.88 calls connect() on a handed-over socket) */
        struct sockaddr_in peer0 = {0}, peer1 = {0};
        struct sockaddr_in other = {.sin_family = AF_INET, .sin_port = htons(9),
                                    .sin_addr.s_addr = htonl(0x7f000003)};
        socklen_t pl = sizeof peer0;
        (void)getpeername(fd, (struct sockaddr *)&peer0, &pl);
        int crc = connect(fd, (const struct sockaddr *)&other, sizeof other);
        pl = sizeof peer1;
        (void)getpeername(fd, (struct sockaddr *)&peer1, &pl);
        say("tunnel: connect elsewhere -> %d, peer %s", crc,
            peer0.sin_port != 0 && peer0.sin_port == peer1.sin_port &&
                    peer0.sin_addr.s_addr == peer1.sin_addr.s_addr
                ? "unchanged"
                : "CHANGED");
        static const char req[] = "GET /hello.txt HTTP/1.0\r\nHost: device\r\n\r\n";
        char resp[1024];
        size_t got = 0;
        ssize_t r;
        if (put_all(fd, req, sizeof req - 1)) {
            while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0) {
                got += (size_t)r;
            }
        }
        resp[got] = '\0';
        char *eol = strstr(resp, "\r\n");
        char *body = strstr(resp, "\r\n\r\n");
        if (eol) {
            *eol = '\0';
        }
        say("tunnel: http status \"%s\" body \"%s\"", resp, body ? body + 4 : "");
        close(fd);
    }
}

static void badptr(void)
{
    size_t len = 0;
    int fd = -1;
    char buf[64];
    say("badptr log(1) -> %s", keel_app_status_name(keel_app_log(g_app, (const char *)1, 10)));
    say("badptr telemetry(NULL) -> %s",
        keel_app_status_name(keel_app_telemetry_send(g_app, NULL, 5)));
    say("badptr telemetry(unmapped) -> %s",
        keel_app_status_name(keel_app_telemetry_send(g_app, (void *)0x1000, 5)));
    say("badptr log(1 MiB) -> %s",
        keel_app_status_name(keel_app_log(g_app, buf, 1 << 20)));
    say("badptr log(0) -> %s", keel_app_status_name(keel_app_log(g_app, buf, 0)));
    say("badptr desired(unmapped) -> %s",
        keel_app_status_name(keel_app_properties_desired(g_app, (void *)0x1000, 64, &len)));
    say("badptr desired(len unmapped) -> %s",
        keel_app_status_name(keel_app_properties_desired(g_app, buf, sizeof buf,
                                                         (size_t *)0x1000)));
    say("badptr channel_open(unmapped) -> %s",
        keel_app_status_name(keel_app_channel_open(g_app, (const char *)0x1000, &fd)));
    say("badptr cloud_open(fd unmapped) -> %s",
        keel_app_status_name(keel_app_cloud_open(g_app, "http", "x:1", (int *)0x1000)));
    say("badptr serial_open(name unmapped) -> %s",
        keel_app_status_name(keel_app_serial_open(g_app, (const char *)0x1000, &fd)));
    say("badptr gpio_open(fd unmapped) -> %s",
        keel_app_status_name(keel_app_gpio_open(g_app, "relay", (int *)0x1000)));
    say("badptr serial_open(name too long) -> %s",
        keel_app_status_name(keel_app_serial_open(g_app, "a-name-longer-than-thirty-one-chars", &fd)));
    say("badptr notify_register(unmapped) -> %s",
        keel_app_status_name(keel_app_notify_register(g_app, (void *)0x10000, 4096, &fd)));
    say("badptr notify_register(read-only) -> %s",
        keel_app_status_name(keel_app_notify_register(g_app, (void *)g_readonly,
                                                      sizeof g_readonly, &fd)));
    say("badptr notify_take(no ring) -> %s",
        keel_app_status_name(keel_app_notify_take(g_app, NULL, 1, &len)));
    say("badptr: alive");
    idle_forever();
}

/* A system call outside keeld's seccomp allow list, by name or number: the app must die of
 * SIGSYS inside the call, never see it return. */
static void sys_call(const char *what)
{
    static const struct {
        const char *name;
        long nr;
    } known[] = {{"bpf", SYS_bpf}, {"ptrace", SYS_ptrace}, {"unshare", SYS_unshare},
                 {"keyctl", SYS_keyctl}};
    long nr = strtol(what, NULL, 10);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(known[i].name, what) == 0) {
            nr = known[i].nr;
        }
    }
    say("evil: sys calling %ld", nr);
    long rc = syscall(nr, 0, 0, 0, 0, 0, 0);
    say("evil: sys returned %ld (%s)", rc, strerror(errno));
}

int main(int argc, char **argv)
{
    keel_app_status st = keel_app_open(&g_app);
    if (st != KEEL_APP_OK) {
        fprintf(stderr, "evil: keel_app_open: %s\n", keel_app_status_name(st));
        return 1;
    }
    const char *mode = argc > 1 ? argv[1] : "";
    say("evil: mode %s", mode);
    if (strcmp(mode, "null") == 0) {
        crash_null_deref();
    } else if (strcmp(mode, "abort") == 0) {
        crash_abort();
    } else if (strcmp(mode, "loop") == 0) {
        spin_forever();
    } else if (strcmp(mode, "forkbomb") == 0) {
        forkbomb();
    } else if (strcmp(mode, "memhog") == 0) {
        memhog();
    } else if (strcmp(mode, "socket") == 0) {
        try_socket();
    } else if (strcmp(mode, "peek") == 0) {
        peek(argc, argv);
    } else if (strcmp(mode, "forge") == 0) {
        forge();
    } else if (strcmp(mode, "tunnel") == 0) {
        tunnel(argc, argv);
    } else if (strcmp(mode, "sys") == 0 && argc > 2) {
        sys_call(argv[2]);
    } else if (strcmp(mode, "badptr") == 0) {
        badptr();
    } else {
        say("evil: unknown mode");
        return 2;
    }
    say("evil: done");
    keel_app_close(g_app);
    return 0;
}
