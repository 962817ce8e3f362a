/* Deployments announced by the cloud: `keel cloud deploy` sets {"update": {"manifest_url": U}}
 * in the device's desired properties, and keeld downloads the release through the app's update
 * agent (include/keel/update.h, slots.c): chunk by chunk with range requests, each chunk checked
 * against the signed manifest's SHA-256 and stored durably before the next, into the inactive
 * slot, while the app keeps running its confirmed version. Once every chunk is in, the agent
 * verifies the image and arms the trial; the app is stopped and started again on trial (a crash
 * loop or a missed confirm reverts it, apps.c and slots.c).
 *
 * Nothing here blocks keeld's loop: the manifest is fetched and checked on a short-lived thread
 * (the "probe": which app is it for?), then the download runs on a thread of its own that alone
 * touches the app's agent until it ends (sv_slots_busy). The loop polls both every
 * SV_DEPLOY_POLL_MS (sv_deploy_poll) and reports progress and outcome as the reported property
 * {"update": {"manifest_url", "state", "detail", "chunks_done", "chunks_total"}}; states:
 * downloading, installed (on trial), refused, failed.
 *
 * Resume: the URL of the download under way is kept in <state>/deploy/<app>.url; the agent's
 * record holds the chunks already stored. A dropped connection is resumed by the fetcher within
 * the run (the range still missing); a keeld restart resumes the download at start-up
 * (sv_deploy_resume) from the first chunk not stored.
 *
 * Retry: a deployment that fails for network reasons (the manifest or the image unreachable,
 * an HTTP error, a transfer that makes no progress) is tried again by keeld itself after a
 * jittered exponential pause (keel_cloud_backoff: SV_DEPLOY_RETRY_MIN_MS doubling up to
 * SV_DEPLOY_RETRY_MAX_MS), reported as state "retrying" with "attempt" and "retry_in_ms"; after
 * SV_DEPLOY_RETRIES failed attempts it is "failed" and waits for the release to be announced
 * again. What the signature or a hash refuses (a bad manifest, a chunk or an image that does
 * not match it, the wrong hardware, a rollback) is final: "refused", never retried.
 *
 * Exit: on SIGTERM keeld sets the download's cancel flag and joins its thread
 * (sv_deploy_shutdown); the URL file stays, so the next start resumes.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/cloud.h"
#include "keel/update.h"
#include "supervisor.h"

#define SV_DEPLOY_TIMEOUT_S 30L
#define SV_DEPLOY_REPORT_MS 500   /* progress reported at most this often */
#define SV_MAX_PROBES 4
#define SV_DEPLOY_BATCH (1u << 20)     /* bytes of chunks stored per sync (keel_update_fetch) */
#define SV_DEPLOY_RETRIES 8u           /* failed attempts before "failed" */
#define SV_DEPLOY_RETRY_MIN_MS 1000u   /* first pause; doubles, jittered in [d/2, d] */
#define SV_DEPLOY_RETRY_MAX_MS 300000u

typedef enum { JOB_PROBE, JOB_FETCH } job_kind;

typedef struct sv_deploy {
    job_kind kind;
    pthread_t th;
    atomic_bool done;
    char url[1024];
    keel_cloud_backoff backoff; /* network failures of this deployment so far */
    volatile int cancel;        /* set on keeld's exit: the thread stops at the next check */
    /* probe: what the manifest is for */
    const sv_daemon *d;
    bool ok;
    const char *verdict; /* "refused" or "failed" when !ok */
    char msg[512];
    uint8_t component[KEEL_IMAGE_UUID_SIZE];
    char hardware[KEEL_RELEASE_HW_SIZE + 1];
    char image_name[128];
    uint64_t expires;
    uint32_t image_size;
    /* fetch */
    keel_update_agent *agent;
    atomic_uint chunks_done, chunks_total;
    keel_update_err result;
    keel_update_error err;
    keel_update_fetch_stats stats;
    int64_t reported_ms;
    unsigned reported_done;
} sv_deploy;

static sv_deploy *g_probes[SV_MAX_PROBES];

/* Deployments waiting to be tried again after a network failure. app[0] == '\0': the
 * manifest could not be fetched (the probe is retried); else the app's download. */
typedef struct sv_retry {
    bool used;
    char url[1024];
    char app[64];
    keel_cloud_backoff backoff;
    int64_t at_ms;
} sv_retry;
static sv_retry g_retries[SV_MAX_PROBES];

/* ---- the probe: fetch and check the manifest ---- */

typedef struct buf {
    uint8_t *p;
    size_t len, max;
} buf;

static size_t on_data(char *ptr, size_t size, size_t n, void *user)
{
    buf *b = user;
    size_t add = size * n;
    if (b->len + add > b->max) {
        return 0; /* aborts the transfer */
    }
    uint8_t *np = realloc(b->p, b->len + add);
    if (!np) {
        return 0;
    }
    b->p = np;
    memcpy(b->p + b->len, ptr, add);
    b->len += add;
    return add;
}

static int on_xfer(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    volatile const int *cancel = ctx;
    return *cancel; /* non-zero aborts the transfer */
}

static bool fetch(const char *url, const char *ca, size_t max, volatile int *cancel, buf *out,
                  char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    out->max = max;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(msg, msglen, "curl unavailable");
        return false;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, SV_DEPLOY_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ca[0]) {
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    }
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)cancel);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(msg, msglen, "%.300s: %s", url, curl_easy_strerror(rc));
        free(out->p);
        out->p = NULL;
        return false;
    }
    return true;
}

static void *probe_main(void *arg)
{
    sv_deploy *j = arg;
    buf man;
    if (!fetch(j->url, j->d->cfg.release_ca, 1u << 20, &j->cancel, &man, j->msg, sizeof j->msg)) {
        j->verdict = "failed";
    } else {
        keel_image_keys keys = {j->d->keys, j->d->nkeys};
        keel_release rel;
        keel_image_error ierr = {{0}};
        if (keel_release_verify(man.p, man.len, &keys, &rel, &ierr) != KEEL_IMAGE_OK) {
            j->verdict = "refused";
            snprintf(j->msg, sizeof j->msg, "%s", ierr.msg);
        } else {
            j->ok = true;
            memcpy(j->component, rel.component, sizeof j->component);
            snprintf(j->hardware, sizeof j->hardware, "%s", rel.hardware);
            snprintf(j->image_name, sizeof j->image_name, "%s", rel.image_name);
            j->expires = rel.expires;
            j->image_size = rel.image_size;
        }
        free(man.p);
    }
    atomic_store(&j->done, true);
    return NULL;
}

/* ---- the fetch thread ---- */

static void on_progress(void *ctx, uint32_t done, uint32_t total)
{
    sv_deploy *j = ctx;
    atomic_store(&j->chunks_total, total);
    atomic_store(&j->chunks_done, done);
}

static void *fetch_main(void *arg)
{
    sv_deploy *j = arg;
    /* chunks stored in runs of up to 1 MiB: one sync and one record commit each */
    keel_update_fetch_opts o = {.progress = on_progress, .progress_ctx = j, .cancel = &j->cancel,
                                .backoff_base_ms = 100, .backoff_max_ms = 5000,
                                .batch_bytes = SV_DEPLOY_BATCH,
                                .ca_file = j->d->cfg.release_ca[0] ? j->d->cfg.release_ca : NULL};
    j->result = keel_update_fetch(j->agent, j->url, &o, &j->stats, &j->err);
    atomic_store(&j->done, true);
    return NULL;
}

/* ---- reports and durable bookkeeping (loop thread) ---- */

static void report_retry(sv_daemon *d, const char *url, const char *state, const char *detail,
                         unsigned done, unsigned total, unsigned attempt, uint32_t retry_in_ms)
{
    if (d->cloud) {
        cJSON *root = cJSON_CreateObject();
        cJSON *u = cJSON_AddObjectToObject(root, "update");
        cJSON_AddStringToObject(u, "manifest_url", url);
        cJSON_AddStringToObject(u, "state", state);
        cJSON_AddStringToObject(u, "detail", detail);
        if (total) {
            cJSON_AddNumberToObject(u, "chunks_done", done);
            cJSON_AddNumberToObject(u, "chunks_total", total);
        }
        if (attempt) {
            cJSON_AddNumberToObject(u, "attempt", attempt);
            cJSON_AddNumberToObject(u, "retry_in_ms", retry_in_ms);
        }
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (text && keel_cloud_report(d->cloud, text, NULL) != KEEL_CLOUD_OK) {
            sv_logf("deploy: report not queued");
        }
        cJSON_free(text);
    }
    sv_logf("deploy: %s: %s: %s", url, state, detail);
}

static void report(sv_daemon *d, const char *url, const char *state, const char *detail,
                   unsigned done, unsigned total)
{
    report_retry(d, url, state, detail, done, total, 0, 0);
}

static void forget(const sv_daemon *d, const char *url);

static void drop_retries(const char *app)
{
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        if (g_retries[i].used && strcmp(g_retries[i].app, app) == 0) {
            g_retries[i].used = false;
        }
    }
}

/* A network failure of `url` (for `app`, or "" for the manifest): tried again after a jittered
 * pause, unless it has failed SV_DEPLOY_RETRIES times already. True if a retry is scheduled. */
static bool retry_later(sv_daemon *d, const char *url, const char *app, keel_cloud_backoff *b,
                        const char *why)
{
    drop_retries(app);
    sv_retry *r = NULL;
    for (int i = 0; i < SV_MAX_PROBES && !r; i++) {
        r = g_retries[i].used ? NULL : &g_retries[i];
    }
    if (!r || b->attempt + 1 >= SV_DEPLOY_RETRIES) {
        char detail[700];
        snprintf(detail, sizeof detail, "%.500s; gave up after %u attempts: announce the release "
                 "again to retry", why, b->attempt + 1);
        forget(d, url);
        report(d, url, "failed", detail, 0, 0);
        return false;
    }
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd) {
        rnd = (uint32_t)sv_now_ms() * 2654435761u;
    }
    uint32_t delay = keel_cloud_backoff_next(b, rnd); /* counts this attempt */
    if (!app[0]) {
        /* the manifest never came: not taken up yet, so a keeld restarted meanwhile applies
         * the cached announcement again (a download's own retry survives through its URL
         * file instead) */
        forget(d, url);
    }
    memset(r, 0, sizeof *r);
    r->used = true;
    snprintf(r->url, sizeof r->url, "%s", url);
    snprintf(r->app, sizeof r->app, "%s", app);
    r->backoff = *b;
    r->at_ms = sv_now_ms() + delay;
    char detail[700];
    snprintf(detail, sizeof detail, "%.500s; attempt %u of %u failed, next in %u ms", why,
             b->attempt, SV_DEPLOY_RETRIES, delay);
    report_retry(d, url, "retrying", detail, 0, 0, b->attempt, delay);
    d->deploying = true; /* the loop polls until the retry is due */
    return true;
}

static keel_cloud_backoff fresh_backoff(void)
{
    return (keel_cloud_backoff){.min_ms = SV_DEPLOY_RETRY_MIN_MS,
                                .max_ms = SV_DEPLOY_RETRY_MAX_MS};
}

/* The manifest URL last taken up, kept across keeld restarts so a cached desired document is
 * not applied twice; forgotten when a download fails, so the next announcement retries. */
static void last_path(const sv_daemon *d, char *out, size_t cap)
{
    (void)sv_fmt(out, cap, "%s/deploy/last_manifest_url", d->cfg.state_dir);
}

static bool already_applied(const sv_daemon *d, const char *url)
{
    char p[PATH_MAX + 64], seen[1024] = "";
    last_path(d, p, sizeof p);
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(seen, sizeof seen, f)) {
            seen[0] = '\0';
        }
        fclose(f);
    }
    return strcmp(seen, url) == 0;
}

static void put_file(const char *path, const char *text)
{
    char tmp[PATH_MAX + 16];
    if (!sv_fmt(tmp, sizeof tmp, "%s.tmp", path)) {
        return;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        sv_logf("deploy: %s: %s", tmp, strerror(errno));
        return;
    }
    fputs(text, f);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        sv_logf("deploy: %s: %s", path, strerror(errno));
    }
}

static void remember(const sv_daemon *d, const char *url)
{
    char p[PATH_MAX + 64];
    last_path(d, p, sizeof p);
    put_file(p, url);
}

static void forget(const sv_daemon *d, const char *url)
{
    char p[PATH_MAX + 64];
    last_path(d, p, sizeof p);
    if (already_applied(d, url)) {
        (void)unlink(p);
    }
}

static bool url_path(const sv_daemon *d, const sv_app *a, char *out, size_t cap)
{
    return sv_fmt(out, cap, "%s/deploy/%s.url", d->cfg.state_dir, a->m.name);
}

static void curl_once(void)
{
    static bool done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread uses libcurl */
        done = true;
    }
}

/* Starts (or resumes) the download of `url` into the app's inactive slot; `b` the network
 * failures so far (NULL: none). */
static void fetch_start(sv_daemon *d, sv_app *a, const char *url, const keel_cloud_backoff *b)
{
    drop_retries(a->m.name);
    keel_update_agent *ag = sv_slots_agent(a);
    keel_update_status st;
    keel_update_get_status(ag, &st);
    keel_update_error err = {{0}};
    if (st.state == KEEL_UPDATE_TRIAL) {
        report(d, url, "refused", "a trial of another version is under way: it must confirm or "
               "revert first", 0, 0);
        return;
    }
    if (st.running_slot < 0 || st.reboot_pending) {
        /* the agent's boot decision, which counts nothing outside a trial */
        keel_update_boot_info bi;
        if (keel_update_boot(ag, (uint64_t)sv_now_ms(), &bi, &err) != KEEL_UPDATE_OK) {
            report(d, url, "failed", err.msg, 0, 0);
            return;
        }
    }
    sv_deploy *j = calloc(1, sizeof *j);
    char up[PATH_MAX + 96];
    if (!j || !url_path(d, a, up, sizeof up)) {
        free(j);
        report(d, url, "failed", "out of memory", 0, 0);
        return;
    }
    j->kind = JOB_FETCH;
    j->d = d;
    j->agent = ag;
    j->backoff = b ? *b : fresh_backoff();
    snprintf(j->url, sizeof j->url, "%s", url);
    put_file(up, url);
    curl_once();
    sv_slots_busy(a, true);
    a->deploy = j;
    if (pthread_create(&j->th, NULL, fetch_main, j) != 0) {
        sv_slots_busy(a, false);
        a->deploy = NULL;
        free(j);
        (void)unlink(up);
        report(d, url, "failed", "cannot start the download thread", 0, 0);
        return;
    }
    d->deploying = true;
    char detail[160];
    if (st.state == KEEL_UPDATE_DOWNLOADING && st.chunks_done) {
        snprintf(detail, sizeof detail, "%s: resuming with %u of %u chunks stored", a->m.name,
                 st.chunks_done, st.chunks_total);
    } else {
        snprintf(detail, sizeof detail, "%s: download started", a->m.name);
    }
    report(d, url, "downloading", detail, st.chunks_done, st.chunks_total);
}

/* Fetches and checks the manifest at `url` on a thread; `b` its network failures so far. */
static void probe_start(sv_daemon *d, const char *url, const keel_cloud_backoff *b)
{
    sv_deploy *j = calloc(1, sizeof *j);
    int slot = -1;
    for (int i = 0; i < SV_MAX_PROBES && slot < 0; i++) {
        slot = g_probes[i] ? -1 : i;
    }
    if (!j || slot < 0) {
        free(j);
        report(d, url, "failed", "too many deployments announced at once", 0, 0);
        return;
    }
    j->kind = JOB_PROBE;
    j->d = d;
    j->backoff = b ? *b : fresh_backoff();
    snprintf(j->url, sizeof j->url, "%s", url);
    curl_once();
    if (pthread_create(&j->th, NULL, probe_main, j) != 0) {
        report(d, j->url, "failed", "cannot start the manifest thread", 0, 0);
        free(j);
        return;
    }
    g_probes[slot] = j;
    d->deploying = true;
}

void sv_deploy_desired(sv_daemon *d, const char *json)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *u = root ? cJSON_GetObjectItemCaseSensitive(root, "update") : NULL;
    const cJSON *m = u ? cJSON_GetObjectItemCaseSensitive(u, "manifest_url") : NULL;
    if (!cJSON_IsString(m) || already_applied(d, m->valuestring)) {
        cJSON_Delete(root);
        return;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s", m->valuestring);
    cJSON_Delete(root);
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        if (g_retries[i].used && strcmp(g_retries[i].url, url) == 0) {
            return; /* announced again while its retry waits: the retry takes it */
        }
    }
    remember(d, url); /* a refused release is not retried in a loop; a new URL is */
    probe_start(d, url, NULL);
}

/* The probe ended: is the release for this device, and which app takes it? */
static void probe_done(sv_daemon *d, sv_deploy *j)
{
    char msg[512];
    sv_app *a = NULL;
    if (!j->ok) {
        if (j->cancel) {
            return; /* keeld is going down: the desired document comes again at the next start */
        }
        if (strcmp(j->verdict, "failed") == 0) {
            (void)retry_later(d, j->url, "", &j->backoff, j->msg); /* the network: again */
        } else {
            report(d, j->url, j->verdict, j->msg, 0, 0);
        }
        return;
    }
    if (j->expires < (uint64_t)time(NULL)) {
        report(d, j->url, "refused", "the release manifest has expired", 0, 0);
        return;
    }
    if (strcmp(j->hardware, d->cfg.hardware) != 0) {
        snprintf(msg, sizeof msg, "for hardware %s, this device is %s", j->hardware,
                 d->cfg.hardware[0] ? d->cfg.hardware : "(no \"hardware\" in its device config)");
        report(d, j->url, "refused", msg, 0, 0);
        return;
    }
    if (j->image_name[0] == '\0' || strchr(j->image_name, '/') || j->image_name[0] == '.') {
        report(d, j->url, "refused", "the manifest's image name is not a plain file name", 0, 0);
        return;
    }
    char comp[37];
    keel_image_uuid_format(j->component, comp);
    for (int i = 0; i < d->napps; i++) {
        if (strcmp(d->apps[i].m.id, comp) == 0) {
            a = &d->apps[i];
        }
    }
    if (!a) {
        snprintf(msg, sizeof msg, "no installed app has component %s", comp);
        report(d, j->url, "refused", msg, 0, 0);
        return;
    }
    if (!sv_slots_agent(a)) {
        snprintf(msg, sizeof msg, "%s has no update slots (placed in the store by hand or "
                 "unsigned): install it once as a signed package (keel app install)", a->m.name);
        report(d, j->url, "refused", msg, 0, 0);
        return;
    }
    if (a->deploy) {
        snprintf(msg, sizeof msg, "%s: another deployment is downloading", a->m.name);
        report(d, j->url, "refused", msg, 0, 0);
        return;
    }
    keel_update_status st;
    keel_update_get_status(sv_slots_agent(a), &st);
    if (st.state == KEEL_UPDATE_TRIAL) {
        report(d, j->url, "refused", "a trial of another version is under way: it must confirm "
               "or revert first", 0, 0);
        return;
    }
    if (sv_slots_reserve(d, a, j->image_size, msg, sizeof msg) != SV_OK) {
        report(d, j->url, "failed", msg, 0, 0);
        return;
    }
    snprintf(a->deploy_url, sizeof a->deploy_url, "%s", j->url);
    fetch_start(d, a, j->url, NULL);
}

/* The download thread of app a ended. */
static void fetch_done(sv_daemon *d, sv_app *a, sv_deploy *j)
{
    char up[PATH_MAX + 96], detail[600];
    keel_update_agent *ag = j->agent;
    sv_slots_busy(a, false);
    a->deploy = NULL;
    bool keep_url = false;
    if (j->result == KEEL_UPDATE_OK) {
        keel_update_error err = {{0}};
        keel_update_err e = keel_update_install(ag, &err);
        if (e == KEEL_UPDATE_OK) {
            keel_update_status st;
            keel_update_get_status(ag, &st);
            snprintf(detail, sizeof detail, "%s %u.%u.%u staged (%llu bytes received in %u "
                     "requests); on trial at its next start", a->m.name,
                     st.target_version.major, st.target_version.minor, st.target_version.patch,
                     (unsigned long long)j->stats.bytes_received, j->stats.requests);
            report(d, j->url, "downloaded", detail, st.chunks_total, st.chunks_total);
            a->deploy_ready = true;
            snprintf(a->deploy_url, sizeof a->deploy_url, "%s", j->url);
        } else {
            snprintf(detail, sizeof detail, "%s: %s (%s)", a->m.name, err.msg,
                     keel_update_err_name(e));
            report(d, j->url, "refused", detail, 0, 0);
        }
    } else if (j->result == KEEL_UPDATE_ERR_CANCELLED) {
        keep_url = true; /* keeld is going down: the next start resumes */
    } else {
        snprintf(detail, sizeof detail, "%s: %s (%s)", a->m.name, j->err.msg,
                 keel_update_err_name(j->result));
        if (j->result == KEEL_UPDATE_ERR_FETCH) {
            /* the network: tried again after a pause, from the chunks stored (the URL file
             * stays, so a keeld restart meanwhile resumes too) */
            keep_url = retry_later(d, j->url, a->m.name, &j->backoff, detail);
        } else if (j->result == KEEL_UPDATE_ERR_STORAGE) {
            forget(d, j->url); /* announce it again to retry: the stored chunks are kept */
            report(d, j->url, "failed", detail, 0, 0);
        } else {
            report(d, j->url, "refused", detail, 0, 0); /* signature, hash, rollback: final */
        }
    }
    if (!keep_url && url_path(d, a, up, sizeof up)) {
        (void)unlink(up);
    }
    free(j);
    if (a->deploy_ready) {
        if (a->state == SV_RUNNING || a->state == SV_STOPPING) {
            sv_app_stop(d, a, "deployment"); /* started on trial once gone (sv_deploy_pending) */
        } else {
            sv_deploy_pending(d, a);
        }
    }
}

bool sv_deploy_poll(sv_daemon *d)
{
    bool any = false;
    if (d->quit) {
        /* SIGTERM: the threads stop now, while the apps stop; keeld joins them at exit */
        for (int i = 0; i < SV_MAX_PROBES; i++) {
            if (g_probes[i]) {
                g_probes[i]->cancel = 1;
            }
        }
        for (int i = 0; i < d->napps; i++) {
            if (d->apps[i].deploy) {
                d->apps[i].deploy->cancel = 1;
            }
        }
    }
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        sv_deploy *j = g_probes[i];
        if (j && atomic_load(&j->done)) {
            pthread_join(j->th, NULL);
            g_probes[i] = NULL;
            probe_done(d, j); /* may start a download */
            free(j);
        }
    }
    for (int i = 0; i < d->napps; i++) {
        sv_app *a = &d->apps[i];
        sv_deploy *j = a->deploy;
        if (!j) {
            continue;
        }
        if (atomic_load(&j->done)) {
            pthread_join(j->th, NULL);
            fetch_done(d, a, j);
            continue;
        }
        unsigned done = atomic_load(&j->chunks_done), total = atomic_load(&j->chunks_total);
        int64_t now = sv_now_ms();
        if (total && done != j->reported_done && now - j->reported_ms >= SV_DEPLOY_REPORT_MS) {
            char detail[160];
            snprintf(detail, sizeof detail, "%s: chunk %u of %u stored", a->m.name, done, total);
            report(d, j->url, "downloading", detail, done, total);
            j->reported_done = done;
            j->reported_ms = now;
        }
    }
    int64_t now = sv_now_ms();
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        sv_retry r = g_retries[i];
        if (!r.used || now < r.at_ms) {
            continue;
        }
        g_retries[i].used = false;
        if (!r.app[0]) {
            probe_start(d, r.url, &r.backoff);
            continue;
        }
        sv_app *a = sv_app_find(d, r.app);
        if (a && !a->deploy && sv_slots_agent(a)) {
            fetch_start(d, a, r.url, &r.backoff);
        }
    }
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        any |= g_probes[i] != NULL || g_retries[i].used;
    }
    for (int i = 0; i < d->napps; i++) {
        any |= d->apps[i].deploy != NULL;
    }
    return any;
}

void sv_deploy_resume(sv_daemon *d, sv_app *a)
{
    char up[PATH_MAX + 96], url[1024];
    if (!url_path(d, a, up, sizeof up)) {
        return;
    }
    FILE *f = fopen(up, "r");
    if (!f) {
        return;
    }
    bool got = fgets(url, sizeof url, f) != NULL;
    fclose(f);
    keel_update_agent *ag = sv_slots_agent(a);
    keel_update_status st = {0};
    if (ag) {
        keel_update_get_status(ag, &st);
    }
    if (!got || !ag || st.state != KEEL_UPDATE_DOWNLOADING) {
        (void)unlink(up); /* nothing left to resume */
        return;
    }
    snprintf(a->deploy_url, sizeof a->deploy_url, "%s", url);
    fetch_start(d, a, url, NULL);
}

void sv_deploy_shutdown(sv_daemon *d)
{
    /* every thread is told first, then joined: they stop together */
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        if (g_probes[i]) {
            g_probes[i]->cancel = 1;
        }
    }
    for (int i = 0; i < d->napps; i++) {
        if (d->apps[i].deploy) {
            d->apps[i].deploy->cancel = 1;
        }
    }
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        if (g_probes[i]) {
            pthread_join(g_probes[i]->th, NULL);
            free(g_probes[i]);
            g_probes[i] = NULL;
        }
        g_retries[i].used = false;
    }
    for (int i = 0; i < d->napps; i++) {
        sv_app *a = &d->apps[i];
        sv_deploy *j = a->deploy;
        if (j) {
            pthread_join(j->th, NULL);
            sv_logf("deploy: %s: download stopped (%s): resumes at the next start", a->m.name,
                    j->result == KEEL_UPDATE_ERR_CANCELLED ? "cancelled" : "ended");
            sv_slots_busy(a, false);
            a->deploy = NULL;
            free(j); /* its URL file stays: sv_deploy_resume */
        }
    }
}

void sv_deploy_describe(const sv_app *a, char *out, size_t cap)
{
    const sv_deploy *j = a->deploy;
    if (j) {
        snprintf(out, cap, "downloading %u/%u %s", atomic_load(&j->chunks_done),
                 atomic_load(&j->chunks_total), j->url);
        return;
    }
    if (a->deploy_ready) {
        snprintf(out, cap, "staged %s", a->deploy_url);
        return;
    }
    for (int i = 0; i < SV_MAX_PROBES; i++) {
        const sv_retry *r = &g_retries[i];
        if (r->used && strcmp(r->app, a->m.name) == 0) {
            int64_t left = r->at_ms - sv_now_ms();
            snprintf(out, cap, "retrying attempt %u in %lld ms %s", r->backoff.attempt + 1,
                     (long long)(left > 0 ? left : 0), r->url);
            return;
        }
    }
    snprintf(out, cap, "none");
}

void sv_deploy_pending(sv_daemon *d, sv_app *a)
{
    if (!a->deploy_ready) {
        return;
    }
    a->deploy_ready = false;
    char msg[512], url[1024];
    snprintf(url, sizeof url, "%s", a->deploy_url);
    if (sv_app_start(d, a, msg, sizeof msg) != SV_OK) {
        report(d, url, "failed", msg, 0, 0);
        return;
    }
    snprintf(msg, sizeof msg, "%s %s%s", a->m.name, a->m.version,
             a->trial ? " started on trial" : " started");
    report(d, url, "installed", msg, 0, 0);
}
