/* What the cloud integration tests share: a broker with certificates for the devices they use,
 * the driver process, and an operator-side receiver that checks "every message exactly once,
 * in order" by message id (QoS 1 redeliveries have an id already seen and are counted, not
 * kept; a skipped id is a gap and fails the test). */
#ifndef KEEL_TEST_CLOUD_RECEIVER_H
#define KEEL_TEST_CLOUD_RECEIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.h"
#include "keel/cloud.h"

typedef struct receiver {
    keel_cloud_op *op;
    const char *device;   /* only this device's telemetry is checked */
    uint64_t last;        /* highest id delivered in order */
    uint64_t dups;        /* redeliveries dropped */
    uint64_t gaps;        /* ids skipped: must stay 0 */
    uint64_t bad_payload; /* payload "n" differs from the id: must stay 0 */
    int reported;         /* reported patches seen */
    char last_reported[1024];
} receiver;

/* Opens an operator connection to broker b (cert "operator"), persistent with `client_id`,
 * watching `device`'s telemetry and reported properties. */
int rx_open(receiver *r, const kb_broker *b, const char *device, const char *client_id);
void rx_close(receiver *r);
/* Runs the receiver until r->last >= want (true) or timeout_ms passes (false). The driver
 * process, if given, must stay alive meanwhile. */
bool rx_wait_last(receiver *r, uint64_t want, const kf_proc *driver, int timeout_ms);
/* Runs until a reported patch containing `needle` arrived. */
bool rx_wait_reported(receiver *r, const char *needle, int timeout_ms);

/* Starts keel-cloudlink with `config` and more args (NULL-terminated). */
int driver_start(kf_proc *p, const char *config, const char *log, ...);
/* The largest N in "accepted N" lines of the driver's log so far. */
uint64_t driver_accepted(const kf_proc *p);
/* Waits until the driver has accepted message id `want` (or dies, or timeout). */
bool driver_wait_accepted(kf_proc *p, uint64_t want, int timeout_ms);
/* Op config for broker b with client cert `name`. */
void op_config(keel_cloud_op_config *cfg, const kb_broker *b, const char *name, char *paths,
               size_t cap);

#endif
