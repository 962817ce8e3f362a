/* bench_cloud: the cloud link's cost, against a real mosquitto (TLS, client certificates) it
 * starts on this machine.
 *
 *  1. Throughput, QoS 1 to the broker: a bare libmosquitto publisher with no durability (what
 *     mosquitto_pub does, with the same in-flight window) is the baseline; the link with its
 *     durable outbox (every message fsynced before it is "accepted", deleted on PUBACK) runs
 *     with group commits of 64 and, for the record, with one fsync per message.
 *  2. Drain: 100,000 messages queued while offline, then the time from the first connect
 *     attempt until the outbox is empty.
 *  3. Fleet: 1,000 links in this one process against the same broker, each with its own
 *     outbox; time until all are connected and have delivered a message, and memory per
 *     device in this process (RSS) and in the broker.
 *
 * The open-file limit is raised to its hard limit first (each link holds a socket and three
 * SQLite files); mosquitto inherits it.
 */
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "broker.h"
#include "keel/cloud.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, pid ? "/proc/%d/status" : "/proc/self/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

static kb_broker broker;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* ---- baseline: a bare QoS 1 publisher ------------------------------------------------- */

static int acked_count;
static void on_pub(struct mosquitto *m, void *obj, int mid)
{
    (void)m, (void)obj, (void)mid;
    acked_count++;
}
static int connected_flag;
static void on_conn(struct mosquitto *m, void *obj, int rc)
{
    (void)m, (void)obj;
    connected_flag = rc == 0 ? 1 : -1;
}

static void bare_io(struct mosquitto *m, int timeout_ms)
{
    struct pollfd p = {.fd = mosquitto_socket(m), .events = POLLIN};
    if (mosquitto_want_write(m)) {
        p.events |= POLLOUT;
    }
    if (poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN)) {
        (void)mosquitto_loop_read(m, 64);
    }
    if (mosquitto_want_write(m)) {
        (void)mosquitto_loop_write(m, 64);
    }
    (void)mosquitto_loop_misc(m);
}

static double bench_bare(int n, int window, const char *payload, size_t len)
{
    char ca[300], cert[300], key[300];
    kb_path(&broker, "ca.pem", ca, sizeof ca);
    kb_path(&broker, "bench.pem", cert, sizeof cert);
    kb_path(&broker, "bench.key", key, sizeof key);
    struct mosquitto *m = mosquitto_new("bench-bare", true, NULL);
    mosquitto_publish_callback_set(m, on_pub);
    mosquitto_connect_callback_set(m, on_conn);
    mosquitto_max_inflight_messages_set(m, (unsigned)window);
    if (mosquitto_tls_set(m, ca, NULL, cert, key, NULL) != MOSQ_ERR_SUCCESS ||
        mosquitto_connect(m, "127.0.0.1", broker.port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bench: bare publisher cannot connect\n");
        exit(1);
    }
    connected_flag = 0;
    while (!connected_flag) {
        bare_io(m, 100);
    }
    acked_count = 0;
    double t0 = now_s();
    int sent = 0;
    char topic[128];
    while (acked_count < n) {
        while (sent < n && sent - acked_count < window) {
            snprintf(topic, sizeof topic, "keel/bench/messages/events/$.mid=%d", sent + 1);
            if (mosquitto_publish(m, NULL, topic, (int)len, payload, 1, false) !=
                MOSQ_ERR_SUCCESS) {
                break;
            }
            sent++;
        }
        bare_io(m, 100);
    }
    double dt = now_s() - t0;
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    return n / dt;
}

/* ---- the link --------------------------------------------------------------------------- */

static keel_cloud_config link_config(const char *device, const char *cert, const char *db,
                                     char *paths)
{
    char *ca = paths, *c = paths + 400, *k = paths + 800, *o = paths + 1200;
    kb_path(&broker, "ca.pem", ca, 400);
    snprintf(c, 400, "%s/%.64s.pem", broker.dir, cert);
    snprintf(k, 400, "%s/%.64s.key", broker.dir, cert);
    snprintf(o, 400, "%s/%.64s", broker.dir, db);
    return (keel_cloud_config){.scheme = KEEL_CLOUD_SCHEME_PLAIN,
                               .host = "127.0.0.1",
                               .port = broker.port,
                               .device_id = device,
                               .prefix = "keel",
                               .ca_file = ca,
                               .cert_file = c,
                               .key_file = k,
                               .outbox_path = o,
                               .outbox_max_bytes = 1ull << 30,
                               .backoff_min_ms = 20,
                               .backoff_max_ms = 200,
                               .max_inflight = 64};
}

static void quiet(void *user, const char *line)
{
    (void)user, (void)line;
}

static keel_cloud *open_link(const char *device, const char *cert, const char *db)
{
    static char paths[1600];
    keel_cloud_config cfg = link_config(device, cert, db, paths);
    keel_cloud_callbacks cb = {.on_log = quiet};
    keel_cloud *c;
    char err[256];
    if (keel_cloud_open(&cfg, &cb, NULL, &c, err, sizeof err) != KEEL_CLOUD_OK) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    return c;
}

static uint64_t queued(keel_cloud *c)
{
    keel_cloud_stats st;
    keel_cloud_get_stats(c, &st);
    return st.queued;
}

static double accept_s; /* time the last bench_durable spent accepting (insert + fsync) */

static double bench_durable(int n, int batch, const char *payload, size_t len, const char *db)
{
    accept_s = 0;
    keel_cloud *c = open_link("bench", "bench", db);
    keel_cloud_stats st;
    do {
        (void)keel_cloud_step(c, 50);
        keel_cloud_get_stats(c, &st);
    } while (!st.connected);
    double t0 = now_s();
    int accepted = 0;
    uint64_t acked0 = st.acked;
    for (;;) {
        keel_cloud_get_stats(c, &st);
        if (accepted >= n && st.acked - acked0 >= (uint64_t)n) {
            break;
        }
        /* Producer: keep the outbox a little ahead of the window, as an app would. */
        if (accepted < n && st.queued < (uint64_t)batch * 4) {
            int k = n - accepted < batch ? n - accepted : batch;
            double a0 = now_s();
            if (k > 1 && keel_cloud_batch_begin(c) != KEEL_CLOUD_OK) {
                exit(1);
            }
            for (int i = 0; i < k; i++) {
                if (keel_cloud_send_telemetry(c, payload, len, NULL, NULL) != KEEL_CLOUD_OK) {
                    exit(1);
                }
            }
            if (k > 1 && keel_cloud_batch_commit(c) != KEEL_CLOUD_OK) {
                exit(1);
            }
            accepted += k;
            accept_s += now_s() - a0;
        }
        /* Wait in poll for PUBACKs rather than spin: the broker shares these cores. */
        (void)keel_cloud_step(c, 10);
    }
    double dt = now_s() - t0;
    keel_cloud_close(c);
    return n / dt;
}

static double bench_drain(int n, const char *payload, size_t len, double *fill_s)
{
    keel_cloud *c = open_link("bench", "bench", "drain.db");
    double t0 = now_s();
    for (int i = 0; i < n; i += 1000) {
        if (keel_cloud_batch_begin(c) != KEEL_CLOUD_OK) {
            exit(1);
        }
        for (int j = 0; j < 1000 && i + j < n; j++) {
            if (keel_cloud_send_telemetry(c, payload, len, NULL, NULL) != KEEL_CLOUD_OK) {
                exit(1);
            }
        }
        if (keel_cloud_batch_commit(c) != KEEL_CLOUD_OK) {
            exit(1);
        }
    }
    *fill_s = now_s() - t0;
    t0 = now_s();
    while (queued(c) > 0) {
        (void)keel_cloud_step(c, 10);
    }
    double dt = now_s() - t0;
    keel_cloud_close(c);
    return dt;
}

typedef struct fleet_result {
    double connect_s;
    long rss_per_dev_kb, broker_per_dev_kb;
} fleet_result;

static fleet_result bench_fleet(int n)
{
    fleet_result r = {0};
    keel_cloud **c = calloc((size_t)n, sizeof *c);
    long rss0 = rss_kb(0), brk0 = rss_kb(broker.proc.pid);
    for (int i = 0; i < n; i++) {
        char dev[32], db[48];
        snprintf(dev, sizeof dev, "fleet-%04d", i);
        snprintf(db, sizeof db, "fleet/%s.db", dev);
        c[i] = open_link(dev, "fleet", db);
        if (keel_cloud_send_telemetry(c[i], "{\"hello\":1}", 11, NULL, NULL) != KEEL_CLOUD_OK) {
            exit(1);
        }
    }
    double t0 = now_s();
    int done = 0;
    while (done < n && now_s() - t0 < 300) {
        done = 0;
        for (int i = 0; i < n; i++) {
            (void)keel_cloud_step(c[i], 0);
            keel_cloud_stats st;
            keel_cloud_get_stats(c[i], &st);
            done += st.connected && st.queued == 0;
        }
    }
    r.connect_s = now_s() - t0;
    if (done < n) {
        fprintf(stderr, "bench: only %d of %d fleet devices delivered\n", done, n);
    }
    r.rss_per_dev_kb = (rss_kb(0) - rss0) / n;
    r.broker_per_dev_kb = (rss_kb(broker.proc.pid) - brk0) / n;
    for (int i = 0; i < n; i++) {
        keel_cloud_close(c[i]);
    }
    free(c);
    return r;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    int backlog = argc > 2 ? atoi(argv[2]) : 100000;
    int fleet = argc > 3 ? atoi(argv[3]) : 1000;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    fprintf(stderr, "bench: open-file limit %llu; starting mosquitto with TLS...\n",
            (unsigned long long)rl.rlim_cur);
    if (kb_init(&broker, "keel", NULL) != 0 || kb_client(&broker, "bench") != 0 ||
        kb_client(&broker, "fleet") != 0) {
        return 1;
    }
    /* The fleet shares one certificate; the bench ACL confines by client id instead. */
    snprintf(broker.acl_extra, sizeof broker.acl_extra, "pattern readwrite keel/%%c/#\n");
    snprintf(broker.extra, sizeof broker.extra, "max_connections -1\n");
    char dir[300];
    kb_path(&broker, "fleet", dir, sizeof dir);
    if (mkdir(dir, 0700) != 0 || kb_start(&broker) != 0) {
        return 1;
    }
    mosquitto_lib_init();
    static char payload[129];
    memset(payload, 'x', 128);
    memcpy(payload, "{\"t\":21.5,\"h\":40,\"pad\":\"", 24);
    memcpy(payload + 126, "\"}", 2);
    size_t len = 128;

    fprintf(stderr, "bench: throughput (%d messages of %zu bytes, QoS 1)...\n", n, len);
    /* The machine is shared: alternate baseline and durable runs and take each one's
     * median, so a burst of load elsewhere does not land on one side only. */
    enum { ROUNDS = 5 };
    double bares[ROUNDS], durs[ROUNDS], accs[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        char db[32];
        snprintf(db, sizeof db, "durable%d.db", r);
        bares[r] = bench_bare(n, 64, payload, len);
        durs[r] = bench_durable(n, 1024, payload, len, db);
        accs[r] = accept_s * durs[r] / n;
    }
    double bare = median(bares, ROUNDS);
    double durable = median(durs, ROUNDS);
    double durable_accept_frac = median(accs, ROUNDS);
    int n1 = n / 10;
    double durable1 = bench_durable(n1, 1, payload, len, "durable1.db");
    fprintf(stderr, "bench: drain of %d queued messages...\n", backlog);
    double fill_s = 0, drain = 0;
    if (backlog > 0) {
        drain = bench_drain(backlog, payload, len, &fill_s);
    }
    fprintf(stderr, "bench: fleet of %d devices...\n", fleet);
    fleet_result fr = {0};
    if (fleet > 0) {
        fr = bench_fleet(fleet);
    }

    printf("\n## cloud link (mosquitto 2.0 over TLS on localhost, %zu-byte messages)\n\n", len);
    printf("| measure | value |\n| --- | --- |\n");
    printf("| baseline: bare QoS 1 publisher, no durability (window 64), median of %d | %.0f msg/s "
           "|\n",
           ROUNDS, bare);
    printf("| keel_cloud, durable outbox, group commits of 1024, median of %d | %.0f msg/s |\n",
           ROUNDS, durable);
    printf("| ... of which accepting (insert + fsync), on the same thread | %.0f%% of the time |\n",
           100.0 * durable_accept_frac);
    printf("| keel_cloud, durable outbox, one fsync per message (%d msgs) | %.0f msg/s |\n", n1,
           durable1);
    printf("| **ratio durable (group commit) / baseline** | **%.2f** (goal >= 0.50) |\n",
           durable / bare);
    printf("| queue %d messages offline (group commits of 1000) | %.2f s |\n", backlog, fill_s);
    printf("| drain %d-message backlog after reconnect | %.2f s (%.0f msg/s) |\n", backlog, drain,
           backlog / drain);
    printf("| fleet: %d devices connected over TLS and delivered | %.2f s |\n", fleet,
           fr.connect_s);
    printf("| fleet: memory per device, this process (link + outbox) | %ld KiB |\n",
           fr.rss_per_dev_kb);
    printf("| fleet: memory per device, in mosquitto | %ld KiB |\n", fr.broker_per_dev_kb);
    kb_stop(&broker);
    mosquitto_lib_cleanup();
    return 0;
}
