/* The connected core and real-time firmware on QEMU mps2-an386 over one intercore channel.
 * The region is a host file in /dev/shm that backs the board's PSRAM at 0x21000000; the
 * doorbell into the guest is a byte on UART1's character device (a Unix socket this test
 * listens on), the doorbell out is a byte the guest writes to UART1. The firmware
 * (firmware/apps/icc_echo) echoes every message; the test checks each echo's payload, order
 * and sequence number, and the firmware's own count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "keel/icc.h"

#define PSRAM_BYTES (16u * 1024u * 1024u)
enum { T_DATA = 1, T_QUIT = 2, T_ECHO = 3, MESSAGES = 20000 };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t len_of(uint32_t i)
{
    return (i * 2654435761u) % (KEEL_ICC_MIN_MSG + 1);
}

static void fill(uint8_t *p, size_t n, uint32_t i)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (uint8_t)(i + k * 7u);
}

static void ring_guest(int sock)
{
    char b = 1;
    assert_int_equal(write(sock, &b, 1), 1);
}

static char shm[128]; /* the host file behind the guest's PSRAM */

static int remove_shm(void **state)
{
    (void)state;
    if (shm[0])
        unlink(shm);
    return 0;
}

static void test_qemu_firmware_echoes_every_message_in_order(void **state)
{
    (void)state;
    char elf[1024];
    snprintf(elf, sizeof elf, "%s/firmware/apps/icc_echo/fw_icc_echo.elf", KEEL_FW_DIR);
    if (access(elf, R_OK) != 0) {
        fail_msg("%s missing: build the fw tree first (make fw)", elf);
    }
    const char *dir = kf_tmpdir("icc-qemu");
    char sockpath[512];
    snprintf(shm, sizeof shm, "/dev/shm/keel-icc-test-%d", (int)getpid());
    snprintf(sockpath, sizeof sockpath, "%s/bell.sock", dir);

    int fd = open(shm, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, PSRAM_BYTES), 0);
    void *mem = mmap(NULL, PSRAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(mem != MAP_FAILED);
    close(fd);
    keel_icc_layout l = {.ring_bytes = 64 * 1024, .max_msg = KEEL_ICC_MIN_MSG};
    l.id_a.b[0] = 0xa;
    l.id_b.b[0] = 0xb;
    assert_int_equal(keel_icc_region_init(mem, PSRAM_BYTES, &l), KEEL_ICC_OK);
    keel_icc_ring r;
    assert_int_equal(keel_icc_ring_attach(&r, mem, PSRAM_BYTES, KEEL_ICC_SIDE_A), KEEL_ICC_OK);

    int lis = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
    assert_int_equal(bind(lis, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lis, 1), 0);

    char script[1024], chardev[600], backend[256];
    snprintf(script, sizeof script, "%s/scripts/qemu-run.sh", kf_source_dir());
    snprintf(chardev, sizeof chardev, "socket,id=bell,path=%s", sockpath);
    snprintf(backend, sizeof backend, "memory-backend-file,id=ram,size=16M,mem-path=%s,share=on",
             shm);
    char *argv[] = {script,    "--timeout",    "90",      elf,     "-chardev", chardev,
                    "-serial", "chardev:bell", "-object", backend, "-machine", "memory-backend=ram",
                    NULL};
    static kf_proc qemu;
    assert_int_equal(kf_spawn(&qemu, "qemu-icc", argv, NULL), 0);
    struct pollfd lp = {.fd = lis, .events = POLLIN};
    if (poll(&lp, 1, 20000) != 1) {
        kf_dump_log(&qemu, 20);
        fail_msg("QEMU did not connect the doorbell UART");
    }
    int sock = accept4(lis, NULL, NULL, SOCK_CLOEXEC);
    assert_true(sock >= 0);
    close(lis);
    /* QEMU opens the memory file after it connects its character devices: only once the
     * firmware has attached is the file surely mapped (the teardown removes it otherwise). */
    assert_int_equal(kf_wait_log(&qemu, "icc_echo: attached", 20000), 0);
    unlink(shm);

    uint8_t out[KEEL_ICC_MIN_MSG], in[KEEL_ICC_MIN_MSG], want[KEEL_ICC_MIN_MSG];
    uint32_t sent = 0, got = 0;
    int64_t deadline = now_ms() + 60000;
    while (got < MESSAGES) {
        bool progress = false, bell;
        while (sent < MESSAGES) {
            size_t n = len_of(sent);
            fill(out, n, sent);
            keel_icc_err rc = keel_icc_ring_send(&r, T_DATA, 0, 0, out, n, NULL, &bell);
            if (bell)
                ring_guest(sock);
            if (rc == KEEL_ICC_ERR_WOULD_BLOCK)
                break;
            assert_int_equal(rc, KEEL_ICC_OK);
            sent++;
            progress = true;
        }
        for (;;) {
            keel_icc_msg m;
            keel_icc_err rc = keel_icc_ring_recv(&r, &m, in, sizeof in, &bell);
            if (bell)
                ring_guest(sock);
            if (rc == KEEL_ICC_ERR_WOULD_BLOCK)
                break;
            assert_int_equal(rc, KEEL_ICC_OK);
            size_t n = len_of(got);
            fill(want, n, got);
            if (m.type != T_ECHO || m.seq != got + 1 || m.len != n || memcmp(in, want, n) != 0) {
                fail_msg("echo %u: type %u seq %u len %u", got, m.type, m.seq, m.len);
            }
            got++;
            progress = true;
        }
        if (progress)
            continue;
        assert_true(now_ms() < deadline);
        /* Nothing to do: announce the wait and sleep on the guest's doorbell byte. */
        if (!keel_icc_ring_arm_rx(&r))
            continue;
        if (sent < MESSAGES && !keel_icc_ring_arm_tx(&r, len_of(sent)))
            continue;
        struct pollfd p = {.fd = sock, .events = POLLIN};
        if (poll(&p, 1, 1000) == 1) {
            char drain[256];
            ssize_t k = read(sock, drain, sizeof drain);
            if (k == 0) {
                kf_dump_log(&qemu, 20);
                fail_msg("QEMU closed the doorbell after %u echoes", got);
            }
        }
    }
    bool bell;
    assert_int_equal(keel_icc_ring_send(&r, T_QUIT, 0, 0, NULL, 0, NULL, &bell), KEEL_ICC_OK);
    if (bell)
        ring_guest(sock);
    int st = kf_wait_exit(&qemu, 30000);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kf_dump_log(&qemu, 20);
        fail_msg("firmware exit status %d", st);
    }
    char expect[64];
    snprintf(expect, sizeof expect, "icc_echo: echoed %d", MESSAGES);
    assert_int_equal(kf_wait_log(&qemu, expect, 1000), 0);
    close(sock);
    munmap(mem, PSRAM_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_qemu_firmware_echoes_every_message_in_order, remove_shm),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}
