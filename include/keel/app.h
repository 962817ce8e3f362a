/* libkeel, the app SDK: what a high-level app calls to reach the world through keeld.
 *
 * The model is Twilio Microvisor's, in Linux terms. An app owns no network, no credentials and
 * no device: every resource is a file descriptor keeld hands it, and every call goes to keeld
 * over one socket keeld created before the app started (fd number in $KEEL_APP_FD).
 *  - Every call returns a keel_app_status; keel_app_status_name() names each value. A bad
 *    pointer or length is a status code, never a crash: buffers go to the kernel as they are
 *    (sendmsg/recvmsg iovecs), so an unmapped buffer comes back as KEEL_APP_ERR_BAD_POINTER.
 *  - Data comes back in buffers the app provides, with the length used.
 *  - Asynchronous events are 16-byte records (keel_app_notification) that keeld writes into a
 *    ring the app registers from its own memory, followed by a wake-up on an fd the app can
 *    poll. keeld never maps app memory: it writes with process_vm_writev, so a forged or
 *    unmapped ring fails on keeld's side with a status, never a fault.
 *  - keel_app_open() also installs a crash handler: on SIGSEGV, SIGBUS, SIGILL, SIGFPE or
 *    SIGABRT it sends keeld the signal, the registers and a raw stack trace, which keeld
 *    symbolises into a crash report, then lets the signal kill the process.
 * Not thread-safe: one keel_app per process, calls from one thread (or under the app's lock).
 */
#ifndef KEEL_APP_H
#define KEEL_APP_H

#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

typedef enum keel_app_status {
    KEEL_APP_OK = 0,
    KEEL_APP_ERR_BAD_POINTER,   /* a buffer the app passed is not readable/writable memory */
    KEEL_APP_ERR_BAD_LENGTH,    /* a length is zero where data is required, or over the limit */
    KEEL_APP_ERR_INVALID_ARG,   /* another argument is out of range */
    KEEL_APP_ERR_NOT_CONNECTED, /* no keeld: $KEEL_APP_FD missing, or keeld closed the socket */
    KEEL_APP_ERR_DENIED,        /* the app's manifest does not grant this capability */
    KEEL_APP_ERR_NOT_FOUND,     /* no such property, channel partner, method call */
    KEEL_APP_ERR_NO_SPACE,      /* keeld's queue or the app's buffer is too small */
    KEEL_APP_ERR_BUSY,          /* try again later */
    KEEL_APP_ERR_UNSUPPORTED,   /* this keeld does not offer the call */
    KEEL_APP_ERR_PROTOCOL,      /* keeld's answer was malformed (a bug) */
    KEEL_APP_ERR_IO,            /* the operating system refused (errno has more) */
    KEEL_APP_ERR_FORGED,        /* keeld found the registered ring's indices corrupted */
    KEEL_APP_ERR_TIMEOUT,       /* no answer in time */
    KEEL_APP_STATUS_COUNT
} keel_app_status;

/* "KEEL_APP_OK", ...; "KEEL_APP_STATUS_UNKNOWN" for values outside the enum. */
const char *keel_app_status_name(keel_app_status s);

/* Largest payload one call carries (telemetry, a property document, a log line, ...). */
#define KEEL_APP_MAX_PAYLOAD 4096u

/* A notification: 16 bytes, written by keeld into the app's ring. */
typedef struct keel_app_notification {
    uint16_t type;   /* keel_app_notify_type */
    uint16_t flags;  /* reserved, 0 */
    uint32_t seq;    /* keeld's running count for this app; a gap means records were dropped */
    uint64_t arg;    /* per type: channel handle, property version, timestamp (test), ... */
} keel_app_notification;
_Static_assert(sizeof(keel_app_notification) == 16, "a notification record is 16 bytes");

typedef enum keel_app_notify_type {
    KEEL_APP_NOTIFY_NONE = 0,
    KEEL_APP_NOTIFY_CLOUD_MESSAGE,    /* a cloud-to-device message or method call is waiting */
    KEEL_APP_NOTIFY_CHANNEL_READABLE, /* arg: channel handle */
    KEEL_APP_NOTIFY_NETWORK_UP,
    KEEL_APP_NOTIFY_NETWORK_DOWN,
    KEEL_APP_NOTIFY_UPDATE_DOWNLOADED,
    KEEL_APP_NOTIFY_PROPERTY_CHANGED, /* arg: desired-properties version */
    KEEL_APP_NOTIFY_STOP_REQUESTED,   /* keeld will stop the app; clean up and exit */
    KEEL_APP_NOTIFY_TEST,             /* arg chosen by the operator (`keel app notify`) */
    KEEL_APP_NOTIFY_TYPE_COUNT
} keel_app_notify_type;

/* The ring header the app's buffer starts with; records follow it. `head` is written by keeld
 * only, `tail` by the app only; both count records and wrap at 2^32. capacity is a power of
 * two. A ring is full when head - tail == capacity; keeld then drops and counts. */
typedef struct keel_app_ring {
    uint32_t magic;    /* KEEL_APP_RING_MAGIC */
    uint32_t capacity; /* records */
    uint32_t head;
    uint32_t tail;
} keel_app_ring;
#define KEEL_APP_RING_MAGIC 0x6b52494eu /* "kRIN" */

typedef struct keel_app keel_app;

/* Connects to keeld through $KEEL_APP_FD and installs the crash handler. *out is a handle the
 * process keeps until keel_app_close(). */
KEEL_NODISCARD keel_app_status keel_app_open(keel_app **out);
/* As keel_app_open with an explicit socket (tests, and apps started by hand with a socket). */
KEEL_NODISCARD keel_app_status keel_app_open_fd(int fd, keel_app **out);
void keel_app_close(keel_app *app);

/* Logs one line (no newline needed) into the app's log that `keel app logs` tails and crash
 * reports quote. */
KEEL_NODISCARD keel_app_status keel_app_log(keel_app *app, const char *line, size_t len);
/* Tells keeld the app is alive. An app whose manifest sets heartbeat_ms must call this (or any
 * other call) at least that often, or keeld reports it hung and restarts it. */
KEEL_NODISCARD keel_app_status keel_app_heartbeat(keel_app *app);
/* After an update, the new version confirms it is healthy; without it before the trial
 * deadline keeld reverts to the previous version. */
KEEL_NODISCARD keel_app_status keel_app_confirm_health(keel_app *app);

/* Cloud, gated by the manifest's cloud features (telemetry, properties, methods). */
KEEL_NODISCARD keel_app_status keel_app_telemetry_send(keel_app *app, const void *json,
                                                       size_t len);
KEEL_NODISCARD keel_app_status keel_app_properties_report(keel_app *app, const void *json,
                                                          size_t len);
/* Copies the desired-properties document into buf (cap bytes); *len gets its length. */
KEEL_NODISCARD keel_app_status keel_app_properties_desired(keel_app *app, void *buf, size_t cap,
                                                           size_t *len);
/* Takes the next cloud method call waiting for the app (a CLOUD_MESSAGE notification says one
 * came). The cloud calls "<app>.<method>"; the app gets `method` alone, NUL-terminated in
 * name (name_cap bytes), the JSON body in body (cap bytes, *len used), and the id to answer
 * with. KEEL_APP_ERR_NOT_FOUND when none is waiting, KEEL_APP_ERR_NO_SPACE when name or body
 * does not fit (*call_id is still set: answer it, 413 say; keeld hands a call out once). */
KEEL_NODISCARD keel_app_status keel_app_method_take(keel_app *app, uint32_t *call_id, char *name,
                                                    size_t name_cap, void *body, size_t cap,
                                                    size_t *len);
/* Answers method call `call_id` with a status (HTTP-like, 200 = ok) and a JSON body. */
KEEL_NODISCARD keel_app_status keel_app_method_answer(keel_app *app, uint32_t call_id,
                                                      int32_t status, const void *json,
                                                      size_t len);

/* Opens the intercore channel to the partner component `partner_id` (its UUID string); *fd is
 * the app's end. KEEL_APP_ERR_DENIED unless both manifests name each other. */
KEEL_NODISCARD keel_app_status keel_app_channel_open(keel_app *app, const char *partner_id,
                                                     int *fd);
/* Opens a tunnel for the app's own requests, carried by keeld: kind "mqtt" or "http", gated
 * by the manifest ("cloud": {"mqtt": true} / {"http": ["host", ...]}). *fd is a byte stream.
 * For http(s) with libcurl over it, TLS included, see keel/app_curl.h (library keel_app_curl). */
KEEL_NODISCARD keel_app_status keel_app_cloud_open(keel_app *app, const char *kind,
                                                   const char *target, int *fd);

/* Devices, by the names the device config gives them ("rs485", "relay"), gated by the
 * manifest's "serial" / "gpio" capabilities. keeld opens the device and hands *fd over:
 *  - serial: the port, read/write, blocking, already in raw mode at the line settings the
 *    device config names (baud, parity, stop bits): read() and write() bytes, poll() it.
 *  - gpio: a Linux GPIO v2 line-request fd for that one line, already requested with the
 *    config's direction: GPIO_V2_LINE_GET_VALUES_IOCTL / GPIO_V2_LINE_SET_VALUES_IOCTL
 *    (<linux/gpio.h>), mask and bits 1 (the request holds one line).
 * KEEL_APP_ERR_DENIED: the manifest does not list the name; KEEL_APP_ERR_NOT_FOUND: the device
 * config has no such device; KEEL_APP_ERR_BUSY: another consumer holds the GPIO line;
 * KEEL_APP_ERR_IO: the device could not be opened (keeld logs why into the app's log).
 * Each call opens the device afresh: close the fd when done. */
KEEL_NODISCARD keel_app_status keel_app_serial_open(keel_app *app, const char *name, int *fd);
KEEL_NODISCARD keel_app_status keel_app_gpio_open(keel_app *app, const char *name, int *fd);

/* Registers `mem` (size bytes, the app's own memory, kept until close) as the notification
 * ring; *wake_fd becomes readable when records arrive (an eventfd: read 8 bytes to clear). */
KEEL_NODISCARD keel_app_status keel_app_notify_register(keel_app *app, void *mem, size_t size,
                                                        int *wake_fd);
/* Takes up to max records from the registered ring; *n gets the count (0 when empty). */
KEEL_NODISCARD keel_app_status keel_app_notify_take(keel_app *app, keel_app_notification *out,
                                                    size_t max, size_t *n);

/* The socket fd (for poll) and the app's name as keeld knows it. */
int keel_app_fd(const keel_app *app);
const char *keel_app_name(const keel_app *app);

#endif
