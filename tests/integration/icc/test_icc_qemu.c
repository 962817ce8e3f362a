/* The connected core and real-time firmware on QEMU mps2-an386 over one intercore channel.
 * The region is a host file in /dev/shm that backs the board's PSRAM at 0x21000000; the
 * doorbell into the guest is a byte on UART1's character device (a Unix socket this test
 * listens on), the doorbell out is a byte the guest writes to UART1. The firmware
 * (firmware/apps/icc_echo, on Keel's RTOS and bare metal) echoes every message; the test checks
 * each echo's payload, order and sequence number, and the firmware's own count. */
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

static char shm[128]; /* the host file behind the guest's PSRAM */

static int remove_shm(void **state)
{
    (void)state;
    if (shm[0])
        unlink(shm);
    return 0;
}

static kf_proc qemu;
static void *psram;

/* Boots the echo firmware on QEMU with a fresh channel region; returns the host's endpoint. */
static keel_icc *start_qemu(const char *image, uint32_t spin_ns, bool icount)
{
    char elf[1024];
    snprintf(elf, sizeof elf, "%s/firmware/apps/icc_echo/%s.elf", KEEL_FW_DIR, image);
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
    psram = mmap(NULL, PSRAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(psram != MAP_FAILED);
    close(fd);
    keel_icc_layout l = {.ring_bytes = 64 * 1024, .max_msg = KEEL_ICC_MIN_MSG};
    l.id_a.b[0] = 0xa;
    l.id_b.b[0] = 0xb;
    assert_int_equal(keel_icc_region_init(psram, PSRAM_BYTES, &l), KEEL_ICC_OK);

    int lis = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
    unlink(sockpath);
    assert_int_equal(bind(lis, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lis, 1), 0);

    char script[1024], chardev[600], backend[256];
    snprintf(script, sizeof script, "%s/scripts/qemu-run.sh", kf_source_dir());
    snprintf(chardev, sizeof chardev, "socket,id=bell,path=%s", sockpath);
    snprintf(backend, sizeof backend, "memory-backend-file,id=ram,size=16M,mem-path=%s,share=on",
             shm);
    /* -icount shift=0: deterministic guest time, interrupts taken at exact instructions. */
    char *argv[] = {script,
                    "--timeout",
                    "90",
                    elf,
                    "-chardev",
                    chardev,
                    "-serial",
                    "chardev:bell",
                    "-object",
                    backend,
                    "-machine",
                    "memory-backend=ram",
                    icount ? "-icount" : NULL,
                    "shift=0",
                    NULL};
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
    keel_icc *c;
    keel_icc_open_opts opts = {.spin_ns = spin_ns};
    assert_int_equal(keel_icc_open_uart(psram, PSRAM_BYTES, KEEL_ICC_SIDE_A, sock, &opts, &c),
                     KEEL_ICC_OK);
    return c;
}

static void stop_qemu(keel_icc *c, uint32_t expect_echoed)
{
    assert_int_equal(keel_icc_send(c, T_QUIT, NULL, 0, 5000), KEEL_ICC_OK);
    int st = kf_wait_exit(&qemu, 30000);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kf_dump_log(&qemu, 20);
        fail_msg("firmware exit status %d", st);
    }
    char expect[64];
    snprintf(expect, sizeof expect, "icc_echo: echoed %u\r" /* the console ends lines in \r\n */,
             expect_echoed);
    assert_int_equal(kf_wait_log(&qemu, expect, 1000), 0);
    /* QEMU is gone: the UART's hang-up says so. */
    keel_icc_msg m;
    uint8_t b[8];
    assert_int_equal(keel_icc_recv(c, &m, b, sizeof b, 5000), KEEL_ICC_ERR_PEER_GONE);
    keel_icc_close(c);
    munmap(psram, PSRAM_BYTES);
}

static void echo_all(const char *image, bool icount)
{
    keel_icc *c = start_qemu(image, 0, icount);
    uint8_t out[KEEL_ICC_MIN_MSG], in[KEEL_ICC_MIN_MSG], want[KEEL_ICC_MIN_MSG];
    uint32_t sent = 0, got = 0;
    int64_t deadline = now_ms() + 60000;
    while (got < MESSAGES) {
        bool progress = false;
        while (sent < MESSAGES) {
            size_t n = len_of(sent);
            fill(out, n, sent);
            keel_icc_err rc = keel_icc_send(c, T_DATA, out, n, 0);
            if (rc == KEEL_ICC_ERR_WOULD_BLOCK)
                break;
            assert_int_equal(rc, KEEL_ICC_OK);
            sent++;
            progress = true;
        }
        for (;;) {
            keel_icc_msg m;
            keel_icc_err rc = keel_icc_recv(c, &m, in, sizeof in, 0);
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
        /* Nothing to do: wait for the guest's doorbell byte (recv armed the ring). */
        struct pollfd p = {.fd = keel_icc_fd(c), .events = POLLIN};
        (void)poll(&p, 1, 1000);
    }
    stop_qemu(c, MESSAGES);
}

static void test_qemu_rtos_firmware_echoes_every_message_in_order(void **state)
{
    (void)state;
    echo_all("fw_icc_echo", false); /* a thread woken by the UART interrupt via a semaphore */
}

static void test_qemu_rtos_firmware_echoes_with_icount(void **state)
{
    (void)state;
    echo_all("fw_icc_echo", true);
}

static void test_qemu_bare_firmware_echoes_every_message_in_order(void **state)
{
    (void)state;
    echo_all("fw_icc_echo_bare", false); /* WFI with the interrupt flag */
}

static void test_qemu_firmware_answers_requests(void **state)
{
    (void)state;
    keel_icc *c = start_qemu("fw_icc_echo", 20000, false);
    for (uint32_t i = 0; i < 500; i++) {
        uint8_t req[16], resp[16];
        fill(req, sizeof req, i);
        keel_icc_msg m;
        assert_int_equal(keel_icc_request(c, T_DATA, req, sizeof req, &m, resp, sizeof resp, 10000),
                         KEEL_ICC_OK);
        assert_true(m.flags & KEEL_ICC_F_REPLY);
        assert_memory_equal(resp, req, sizeof req);
    }
    stop_qemu(c, 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_qemu_rtos_firmware_echoes_every_message_in_order,
                                  remove_shm),
        cmocka_unit_test_teardown(test_qemu_bare_firmware_echoes_every_message_in_order,
                                  remove_shm),
        cmocka_unit_test_teardown(test_qemu_rtos_firmware_echoes_with_icount, remove_shm),
        cmocka_unit_test_teardown(test_qemu_firmware_answers_requests, remove_shm),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}
