/* A device for the integration tests and the benchmark: one "power-on" of a Linux device that
 * keeps its slots in files, per invocation.
 *
 *   update_device --dir D --provision IMAGE --slot-size N
 *   update_device --dir D --key K.pub --component UUID --hardware HW --url MANIFEST_URL
 *                 [--die-after-ops N] [--no-confirm] [--ca CA.pem] [--cancel-after CHUNKS]
 *
 * A run boots (the agent's boot decision), confirms if it runs on trial, otherwise downloads
 * and installs what the manifest names, and exits; the next run is the restart. With
 * --die-after-ops the process kills itself (_exit, no cleanup) at that storage operation, as
 * `kill -9` would, after printing the image bytes it had received so far. Output lines:
 *   boot slot S version X.Y.Z trial 0|1
 *   confirmed X.Y.Z | installed X.Y.Z | up to date X.Y.Z
 *   received N stored M requests R retries T
 *   died at op N received B
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/update.h"

static keel_update_storage inner, outer;
static unsigned long long ops, die_at;
static keel_update_fetch_stats stats;
static volatile int cancel_flag;
static unsigned cancel_after; /* chunks; 0: never */

static void count_chunks(void *ctx, uint32_t done, uint32_t total)
{
    (void)ctx, (void)total;
    static unsigned stored;
    if (cancel_after && ++stored >= cancel_after) {
        cancel_flag = 1;
    }
    (void)done;
}

static void maybe_die(void)
{
    if (die_at && ++ops == die_at) {
        char line[96];
        int n = snprintf(line, sizeof line, "died at op %llu received %llu\n", ops,
                         (unsigned long long)stats.bytes_received);
        (void)!write(1, line, (size_t)n);
        _exit(9);
    }
}

static int w_read(void *c, keel_update_area a, uint32_t o, void *b, uint32_t l)
{
    (void)c;
    return inner.read(inner.ctx, a, o, b, l);
}
static int w_write(void *c, keel_update_area a, uint32_t o, const void *b, uint32_t l)
{
    (void)c;
    maybe_die();
    return inner.write(inner.ctx, a, o, b, l);
}
static int w_erase(void *c, keel_update_area a, uint32_t o, uint32_t l)
{
    (void)c;
    maybe_die();
    return inner.erase(inner.ctx, a, o, l);
}
static int w_sync(void *c, keel_update_area a)
{
    (void)c;
    maybe_die();
    return inner.sync(inner.ctx, a);
}

static int fail(const char *what, keel_update_err e, const keel_update_error *err)
{
    fprintf(stderr, "update_device: %s: %s: %s\n", what, keel_update_err_name(e), err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},       {"provision", required_argument, NULL, 'p'},
        {"slot-size", required_argument, NULL, 's'}, {"key", required_argument, NULL, 'k'},
        {"component", required_argument, NULL, 'c'}, {"hardware", required_argument, NULL, 'w'},
        {"url", required_argument, NULL, 'u'},       {"die-after-ops", required_argument, NULL, 'x'},
        {"no-confirm", no_argument, NULL, 'n'},      {"ca", required_argument, NULL, 'a'},
        {"cancel-after", required_argument, NULL, 'C'}, {0}};
    const char *dir = NULL, *prov = NULL, *key = NULL, *comp = NULL, *hw = "", *url = NULL;
    const char *ca = NULL;
    unsigned long slot = 1u << 20;
    bool confirm = true;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'p': prov = optarg; break;
        case 's': slot = strtoul(optarg, NULL, 0); break;
        case 'k': key = optarg; break;
        case 'c': comp = optarg; break;
        case 'w': hw = optarg; break;
        case 'u': url = optarg; break;
        case 'x': die_at = strtoull(optarg, NULL, 0); break;
        case 'n': confirm = false; break;
        case 'a': ca = optarg; break;
        case 'C': cancel_after = (unsigned)strtoul(optarg, NULL, 0); break;
        default: return 2;
        }
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    keel_update_error err;
    keel_update_err e = keel_update_file_storage_open(dir, (uint32_t)slot, &inner, &err);
    if (e != KEEL_UPDATE_OK) {
        return fail("storage", e, &err);
    }
    if (prov) {
        uint8_t *img;
        size_t len;
        keel_image_error ie;
        if (keel_image_read_file(prov, slot, &img, &len, &ie) != KEEL_IMAGE_OK) {
            fprintf(stderr, "update_device: %s\n", ie.msg);
            return 1;
        }
        e = keel_update_provision(&inner, img, len, &err);
        free(img);
        return e == KEEL_UPDATE_OK ? 0 : fail("provision", e, &err);
    }
    outer = inner;
    outer.read = w_read;
    outer.write = w_write;
    outer.erase = w_erase;
    outer.sync = w_sync;
    keel_image_pubkey pub;
    keel_image_error ie;
    if (!key || keel_image_pubkey_load(key, &pub, &ie) != KEEL_IMAGE_OK) {
        fprintf(stderr, "update_device: --key: %s\n", key ? ie.msg : "missing");
        return 2;
    }
    keel_update_config cfg = {.storage = &outer, .keys = {&pub, 1}};
    if (!comp || !keel_image_uuid_parse(comp, cfg.component)) {
        fprintf(stderr, "update_device: --component UUID\n");
        return 2;
    }
    snprintf(cfg.hardware, sizeof cfg.hardware, "%s", hw);
    keel_update_agent *a;
    if ((e = keel_update_open(&cfg, &a, &err)) != KEEL_UPDATE_OK) {
        return fail("open", e, &err);
    }
    keel_update_boot_info b;
    if ((e = keel_update_boot(a, 0, &b, &err)) != KEEL_UPDATE_OK) {
        return fail("boot", e, &err);
    }
    const keel_image_version *v = &b.image.header.version;
    printf("boot slot %d version %u.%u.%u trial %d\n", b.slot, v->major, v->minor, v->patch,
           b.trial);
    int rc = 0;
    if (b.trial) {
        if (confirm) {
            e = keel_update_confirm(a, &err);
            rc = e == KEEL_UPDATE_OK ? 0 : fail("confirm", e, &err);
            if (!rc) {
                printf("confirmed %u.%u.%u\n", v->major, v->minor, v->patch);
            }
        }
    } else if (url) {
        keel_update_fetch_opts fo = {.backoff_base_ms = 2, .backoff_max_ms = 50, .ca_file = ca,
                                     .max_attempts = 3, .cancel = &cancel_flag,
                                     .progress = count_chunks};
        e = keel_update_fetch(a, url, &fo, &stats, &err);
        printf("received %llu stored %llu requests %u retries %u\n",
               (unsigned long long)stats.bytes_received, (unsigned long long)stats.bytes_stored,
               stats.requests, stats.retries);
        if (e == KEEL_UPDATE_ERR_CANCELLED) {
            keel_update_status st;
            keel_update_get_status(a, &st);
            printf("cancelled with %u of %u chunks\n", st.chunks_done, st.chunks_total);
        } else if (e == KEEL_UPDATE_ERR_UP_TO_DATE) {
            printf("up to date %u.%u.%u\n", v->major, v->minor, v->patch);
        } else if (e == KEEL_UPDATE_OK && (e = keel_update_install(a, &err)) == KEEL_UPDATE_OK) {
            keel_update_status st;
            keel_update_get_status(a, &st);
            printf("installed %u.%u.%u\n", st.target_version.major, st.target_version.minor,
                   st.target_version.patch);
        } else {
            rc = fail("update", e, &err);
        }
    }
    keel_update_close(a);
    keel_update_file_storage_close(&inner);
    return rc;
}
