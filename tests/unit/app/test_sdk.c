/* libkeel against a scripted keeld: the test holds the other end of the app's socket, queues
 * keeld's answers before each call (SOCK_SEQPACKET keeps them apart) and reads what the SDK
 * sent. Checks status codes for bad pointers and lengths, answer matching, and the app's side
 * of the notification ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keel/app.h"
#include "wire.h"

static int keeld_end = -1;
static keel_app *app;
static uint32_t next_seq;

/* Queues keeld's answer to the next call (op, status, payload, optional fd). */
static void queue_answer(uint16_t op, keel_app_status st, const void *data, size_t len, int fd)
{
    keel_wire_hdr h = {.op = op | KEEL_WIRE_ANSWER, .status = st, .seq = ++next_seq,
                       .len = (uint32_t)len};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)data, len}};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr a;
    } ctl;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.b;
        m.msg_controllen = sizeof ctl.b;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    assert_true(sendmsg(keeld_end, &m, 0) > 0);
}

/* Reads the request the SDK sent; returns its op and copies the payload. */
static uint16_t take_request(void *payload, size_t cap, size_t *len)
{
    uint8_t buf[KEEL_WIRE_MAX_MSG];
    ssize_t n = recv(keeld_end, buf, sizeof buf, MSG_DONTWAIT);
    assert_true(n >= (ssize_t)sizeof(keel_wire_hdr));
    assert_int_equal(keel_wire_check(buf, (size_t)n), KEEL_APP_OK);
    keel_wire_hdr h;
    memcpy(&h, buf, sizeof h);
    if (payload) {
        memcpy(payload, buf + sizeof h, h.len < cap ? h.len : cap);
    }
    if (len) {
        *len = h.len;
    }
    return h.op;
}

static bool nothing_sent(void)
{
    uint8_t b[16];
    return recv(keeld_end, b, sizeof b, MSG_DONTWAIT) < 0;
}

static int setup(void **state)
{
    (void)state;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        return -1;
    }
    keeld_end = sv[0];
    next_seq = 0;
    queue_answer(KEEL_WIRE_HELLO, KEEL_APP_OK, "unit", 4, -1);
    if (keel_app_open_fd(sv[1], &app) != KEEL_APP_OK) {
        return -1;
    }
    (void)take_request(NULL, 0, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keel_app_close(app);
    close(keeld_end);
    return 0;
}

static void test_open_name_from_keeld(void **state)
{
    (void)state;
    assert_string_equal(keel_app_name(app), "unit");
    keel_app *second;
    assert_int_equal(keel_app_open_fd(keeld_end, &second), KEEL_APP_ERR_BUSY);
}

static void test_log_sends_text_and_returns_keelds_status(void **state)
{
    (void)state;
    queue_answer(KEEL_WIRE_LOG, KEEL_APP_OK, NULL, 0, -1);
    assert_int_equal(keel_app_log(app, "hi there", 8), KEEL_APP_OK);
    char p[16] = {0};
    size_t n;
    assert_int_equal(take_request(p, sizeof p, &n), KEEL_WIRE_LOG);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "hi there", 8);
    queue_answer(KEEL_WIRE_TELEMETRY, KEEL_APP_ERR_DENIED, NULL, 0, -1);
    assert_int_equal(keel_app_telemetry_send(app, "{}", 2), KEEL_APP_ERR_DENIED);
    assert_int_equal(take_request(NULL, 0, NULL), KEEL_WIRE_TELEMETRY);
}

static void test_bad_pointer_and_length_caught_before_sending(void **state)
{
    (void)state;
    assert_int_equal(keel_app_log(app, NULL, 3), KEEL_APP_ERR_BAD_POINTER);
    assert_int_equal(keel_app_log(app, "x", 0), KEEL_APP_ERR_BAD_LENGTH);
    assert_int_equal(keel_app_log(app, "x", KEEL_APP_MAX_PAYLOAD + 1), KEEL_APP_ERR_BAD_LENGTH);
    assert_int_equal(keel_app_channel_open(app, (const char *)16, NULL), KEEL_APP_ERR_BAD_POINTER);
    int fd;
    assert_int_equal(keel_app_channel_open(app, "", &fd), KEEL_APP_ERR_BAD_LENGTH);
    assert_int_equal(keel_app_cloud_open(app, "http", "h:1", (int *)8), KEEL_APP_ERR_BAD_POINTER);
    assert_true(nothing_sent());
}

static void test_device_open_sends_the_name_and_returns_keelds_fd(void **state)
{
    (void)state;
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    queue_answer(KEEL_WIRE_SERIAL_OPEN, KEEL_APP_OK, NULL, 0, pfd[0]);
    int fd = -1;
    assert_int_equal(keel_app_serial_open(app, "rs485", &fd), KEEL_APP_OK);
    char p[32] = {0};
    size_t n;
    assert_int_equal(take_request(p, sizeof p, &n), KEEL_WIRE_SERIAL_OPEN);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "rs485", 5);
    /* the fd that came is the pipe keeld sent: bytes written at one end come out of it */
    assert_true(fd >= 0);
    assert_int_equal(write(pfd[1], "ok", 2), 2);
    char got[2];
    assert_int_equal(read(fd, got, 2), 2);
    assert_memory_equal(got, "ok", 2);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    close(pfd[0]);
    close(pfd[1]);
    /* a refusal leaves *fd at -1 */
    queue_answer(KEEL_WIRE_GPIO_OPEN, KEEL_APP_ERR_DENIED, NULL, 0, -1);
    fd = 42;
    assert_int_equal(keel_app_gpio_open(app, "relay", &fd), KEEL_APP_ERR_DENIED);
    assert_int_equal(fd, -1);
    assert_int_equal(take_request(NULL, 0, NULL), KEEL_WIRE_GPIO_OPEN);
    /* checked before anything is sent */
    assert_int_equal(keel_app_serial_open(app, "", &fd), KEEL_APP_ERR_BAD_LENGTH);
    assert_int_equal(keel_app_serial_open(app, NULL, &fd), KEEL_APP_ERR_BAD_POINTER);
    assert_int_equal(keel_app_gpio_open(app, "relay", NULL), KEEL_APP_ERR_BAD_POINTER);
    assert_int_equal(keel_app_serial_open(app, "0123456789012345678901234567890123", &fd),
                     KEEL_APP_ERR_BAD_LENGTH);
    assert_true(nothing_sent());
}

static void test_unmapped_buffer_is_bad_pointer_not_a_crash(void **state)
{
    (void)state;
    /* the kernel refuses to read it: EFAULT from sendmsg */
    assert_int_equal(keel_app_telemetry_send(app, (const void *)4096, 10),
                     KEEL_APP_ERR_BAD_POINTER);
    assert_true(nothing_sent());
}

static void test_desired_copied_into_app_buffer_or_no_space(void **state)
{
    (void)state;
    char buf[32];
    size_t n = 0;
    queue_answer(KEEL_WIRE_DESIRED, KEEL_APP_OK, "{\"t\":21}", 8, -1);
    assert_int_equal(keel_app_properties_desired(app, buf, sizeof buf, &n), KEEL_APP_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(buf, "{\"t\":21}", 8);
    (void)take_request(NULL, 0, NULL);
    queue_answer(KEEL_WIRE_DESIRED, KEEL_APP_OK, "{\"t\":21}", 8, -1);
    assert_int_equal(keel_app_properties_desired(app, buf, 4, &n), KEEL_APP_ERR_NO_SPACE);
    assert_int_equal(n, 8); /* how much was needed */
    (void)take_request(NULL, 0, NULL);
}

/* keeld's METHOD_TAKE answer: keel_wire_method_call, then name, then body. */
static void queue_call(uint32_t id, const char *name, uint32_t name_len, const char *body)
{
    uint8_t b[256];
    keel_wire_method_call c = {id, name_len, (uint32_t)strlen(body), 0};
    memcpy(b, &c, sizeof c);
    memcpy(b + sizeof c, name, strlen(name));
    memcpy(b + sizeof c + strlen(name), body, strlen(body));
    queue_answer(KEEL_WIRE_METHOD_TAKE, KEEL_APP_OK, b, sizeof c + strlen(name) + strlen(body),
                 -1);
}

static void test_method_take_copies_the_call_or_says_why_not(void **state)
{
    (void)state;
    uint32_t id = 0;
    char name[16], body[64];
    size_t n = 0;
    queue_call(7, "echo", 4, "{\"a\":1}");
    assert_int_equal(keel_app_method_take(app, &id, name, sizeof name, body, sizeof body, &n),
                     KEEL_APP_OK);
    assert_int_equal(take_request(NULL, 0, NULL), KEEL_WIRE_METHOD_TAKE);
    assert_int_equal(id, 7);
    assert_string_equal(name, "echo");
    assert_int_equal(n, 7);
    assert_memory_equal(body, "{\"a\":1}", 7);
    /* the name does not fit with its NUL: NO_SPACE, but the id is there to answer with */
    queue_call(8, "echo", 4, "{}");
    assert_int_equal(keel_app_method_take(app, &id, name, 4, body, sizeof body, &n),
                     KEEL_APP_ERR_NO_SPACE);
    assert_int_equal(id, 8);
    (void)take_request(NULL, 0, NULL);
    /* an unmapped body buffer: a status, not a crash */
    queue_call(9, "echo", 4, "{}");
    assert_int_equal(keel_app_method_take(app, &id, name, sizeof name, (void *)4096, 64, &n),
                     KEEL_APP_ERR_BAD_POINTER);
    (void)take_request(NULL, 0, NULL);
    /* lengths that disagree with the answer */
    queue_call(10, "echo", 40, "{}");
    assert_int_equal(keel_app_method_take(app, &id, name, sizeof name, body, sizeof body, &n),
                     KEEL_APP_ERR_PROTOCOL);
    (void)take_request(NULL, 0, NULL);
    /* nothing waiting: keeld's status as it is */
    queue_answer(KEEL_WIRE_METHOD_TAKE, KEEL_APP_ERR_NOT_FOUND, NULL, 0, -1);
    assert_int_equal(keel_app_method_take(app, &id, name, sizeof name, body, sizeof body, &n),
                     KEEL_APP_ERR_NOT_FOUND);
    (void)take_request(NULL, 0, NULL);
    assert_int_equal(keel_app_method_take(app, NULL, name, sizeof name, body, sizeof body, &n),
                     KEEL_APP_ERR_BAD_POINTER);
    assert_int_equal(keel_app_method_take(app, &id, name, 0, body, sizeof body, &n),
                     KEEL_APP_ERR_BAD_LENGTH);
    assert_true(nothing_sent());
}

static void test_answer_for_another_call_is_protocol_error(void **state)
{
    (void)state;
    queue_answer(KEEL_WIRE_LOG, KEEL_APP_OK, NULL, 0, -1); /* wrong op for a heartbeat */
    assert_int_equal(keel_app_heartbeat(app), KEEL_APP_ERR_PROTOCOL);
    (void)take_request(NULL, 0, NULL);
}

static void test_notify_ring_register_and_take(void **state)
{
    (void)state;
    static uint64_t mem[(sizeof(keel_app_ring) + 8 * 16) / 8];
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    queue_answer(KEEL_WIRE_NOTIFY_REGISTER, KEEL_APP_OK, NULL, 0, efd);
    int wake = -1;
    assert_int_equal(keel_app_notify_register(app, mem, sizeof mem, &wake), KEEL_APP_OK);
    assert_true(wake >= 0);
    keel_wire_ring r;
    assert_int_equal(take_request(&r, sizeof r, NULL), KEEL_WIRE_NOTIFY_REGISTER);
    assert_int_equal(r.addr, (uint64_t)(uintptr_t)mem);
    keel_app_ring *ring = (keel_app_ring *)mem;
    assert_int_equal(ring->magic, KEEL_APP_RING_MAGIC);
    assert_int_equal(ring->capacity, 8);

    /* play keeld: two records, head moved, eventfd raised */
    keel_app_notification *recs = (keel_app_notification *)(ring + 1);
    recs[0] = (keel_app_notification){.type = KEEL_APP_NOTIFY_TEST, .seq = 1, .arg = 11};
    recs[1] = (keel_app_notification){.type = KEEL_APP_NOTIFY_NETWORK_UP, .seq = 2, .arg = 0};
    ring->head = 2;
    uint64_t one = 1;
    assert_int_equal(write(efd, &one, sizeof one), 8);
    keel_app_notification got[4];
    size_t n = 0;
    assert_int_equal(keel_app_notify_take(app, got, 4, &n), KEEL_APP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].arg, 11);
    assert_int_equal(got[1].type, KEEL_APP_NOTIFY_NETWORK_UP);
    assert_int_equal(ring->tail, 2);
    uint64_t v;
    assert_true(read(wake, &v, sizeof v) < 0); /* the wake-up was cleared */

    /* a head that cannot be (more than capacity ahead) is reported, not followed */
    ring->head = ring->tail + 9;
    assert_int_equal(keel_app_notify_take(app, got, 4, &n), KEEL_APP_ERR_FORGED);
    ring->head = ring->tail;
    assert_int_equal(keel_app_notify_take(app, NULL, 4, &n), KEEL_APP_ERR_BAD_POINTER);
    close(efd);
}

static void test_status_names_cover_the_enum(void **state)
{
    (void)state;
    for (int s = 0; s < KEEL_APP_STATUS_COUNT; s++) {
        assert_string_not_equal(keel_app_status_name((keel_app_status)s),
                                "KEEL_APP_STATUS_UNKNOWN");
    }
    assert_string_equal(keel_app_status_name(KEEL_APP_STATUS_COUNT), "KEEL_APP_STATUS_UNKNOWN");
    assert_string_equal(keel_app_status_name(KEEL_APP_ERR_DENIED), "KEEL_APP_ERR_DENIED");
}

static void test_no_keeld_is_not_connected(void **state)
{
    (void)state;
    assert_int_equal(keel_app_heartbeat(NULL), KEEL_APP_ERR_NOT_CONNECTED);
    unsetenv("KEEL_APP_FD");
    keel_app *a;
    assert_int_equal(keel_app_open(&a), KEEL_APP_ERR_NOT_CONNECTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_name_from_keeld),
        cmocka_unit_test(test_log_sends_text_and_returns_keelds_status),
        cmocka_unit_test(test_bad_pointer_and_length_caught_before_sending),
        cmocka_unit_test(test_device_open_sends_the_name_and_returns_keelds_fd),
        cmocka_unit_test(test_unmapped_buffer_is_bad_pointer_not_a_crash),
        cmocka_unit_test(test_desired_copied_into_app_buffer_or_no_space),
        cmocka_unit_test(test_answer_for_another_call_is_protocol_error),
        cmocka_unit_test(test_method_take_copies_the_call_or_says_why_not),
        cmocka_unit_test(test_notify_ring_register_and_take),
        cmocka_unit_test(test_status_names_cover_the_enum),
        cmocka_unit_test(test_no_keeld_is_not_connected),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
