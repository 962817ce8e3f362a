/* Deployments announced by the cloud: `keel cloud deploy` sets {"update": {"manifest_url": U}}
 * in the device's desired properties. keeld fetches the signed release manifest at U, checks
 * its signature against the trusted keys, its expiry and hardware, fetches the image it names
 * (next to the manifest), checks size and SHA-256 against the manifest, and installs the image
 * as a package for the app whose component id it carries: stopped first if running, started
 * after, on trial (a crash loop reverts it, apps.c). The outcome goes back as a reported
 * property. Downloads run on keeld's thread with a deadline: packages are small, and an app's
 * SDK calls wait at most that long. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keel/cloud.h"
#include "supervisor.h"

#define SV_DEPLOY_TIMEOUT_S 30L

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

static bool fetch(const char *url, size_t max, buf *out, char *msg, size_t msglen)
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
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(msg, msglen, "%s: %s", url, curl_easy_strerror(rc));
        free(out->p);
        out->p = NULL;
        return false;
    }
    return true;
}

static void report(sv_daemon *d, const char *url, const char *state, const char *detail)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *u = cJSON_AddObjectToObject(root, "update");
    cJSON_AddStringToObject(u, "manifest_url", url);
    cJSON_AddStringToObject(u, "state", state);
    cJSON_AddStringToObject(u, "detail", detail);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text && keel_cloud_report(d->cloud, text, NULL) != KEEL_CLOUD_OK) {
        sv_logf("deploy: report not queued");
    }
    cJSON_free(text);
    sv_logf("deploy: %s: %s: %s", url, state, detail);
}

/* The manifest URL last applied, kept across keeld restarts so a cached desired document is
 * not applied twice. */
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

static void remember(const sv_daemon *d, const char *url)
{
    char p[PATH_MAX + 64];
    last_path(d, p, sizeof p);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(url, f);
        fclose(f);
    }
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
    char url[1024], msg[512];
    snprintf(url, sizeof url, "%s", m->valuestring);
    cJSON_Delete(root);
    remember(d, url); /* a refused release is not retried in a loop; a new URL is */

    buf man, img = {0};
    if (!fetch(url, 1u << 20, &man, msg, sizeof msg)) {
        report(d, url, "failed", msg);
        return;
    }
    keel_image_keys keys = {d->keys, d->nkeys};
    keel_release rel;
    keel_image_error ierr = {{0}};
    char dir[PATH_MAX + 64], path[PATH_MAX + 128];
    sv_app *a = NULL;
    if (keel_release_verify(man.p, man.len, &keys, &rel, &ierr) != KEEL_IMAGE_OK) {
        report(d, url, "refused", ierr.msg);
        goto out;
    }
    if (rel.expires < (uint64_t)time(NULL)) {
        report(d, url, "refused", "the release manifest has expired");
        goto out;
    }
    if (d->cfg.hardware[0] && strcmp(rel.hardware, d->cfg.hardware) != 0) {
        snprintf(msg, sizeof msg, "for hardware %s, this device is %s", rel.hardware,
                 d->cfg.hardware);
        report(d, url, "refused", msg);
        goto out;
    }
    if (rel.image_name[0] == '\0' || strchr(rel.image_name, '/') || rel.image_name[0] == '.') {
        report(d, url, "refused", "the manifest's image name is not a plain file name");
        goto out;
    }
    char comp[37];
    keel_image_uuid_format(rel.component, comp);
    for (int i = 0; i < d->napps; i++) {
        if (strcmp(d->apps[i].m.id, comp) == 0) {
            a = &d->apps[i];
        }
    }
    if (!a) {
        snprintf(msg, sizeof msg, "no installed app has component %s", comp);
        report(d, url, "refused", msg);
        goto out;
    }
    /* the image sits next to the manifest */
    char iurl[1200];
    const char *slash = strrchr(url, '/');
    snprintf(iurl, sizeof iurl, "%.*s/%s", (int)(slash ? slash - url : 0), url, rel.image_name);
    if (!fetch(iurl, (size_t)rel.image_size, &img, msg, sizeof msg)) {
        report(d, url, "failed", msg);
        goto out;
    }
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, img.p, img.len);
    if (img.len != rel.image_size || sodium_memcmp(h, rel.image_hash, sizeof h) != 0) {
        report(d, url, "refused", "the image does not match the manifest's size and SHA-256");
        goto out;
    }
    (void)sv_fmt(dir, sizeof dir, "%s/deploy", d->cfg.state_dir);
    (void)sv_fmt(path, sizeof path, "%s/%s", dir, rel.image_name);
    FILE *f = fopen(path, "wb");
    bool stored = f && fwrite(img.p, 1, img.len, f) == img.len;
    if (f && fclose(f) != 0) {
        stored = false;
    }
    if (!stored) {
        report(d, url, "failed", "cannot store the image");
        goto out;
    }
    (void)sv_fmt(a->deploy_image, sizeof a->deploy_image, "%s", path);
    (void)sv_fmt(a->deploy_url, sizeof a->deploy_url, "%s", url);
    if (a->state == SV_RUNNING || a->state == SV_STOPPING) {
        sv_app_stop(d, a, "deployment"); /* installed when it is gone (sv_deploy_pending) */
    } else {
        sv_deploy_pending(d, a);
    }
out:
    free(man.p);
    free(img.p);
}

void sv_deploy_pending(sv_daemon *d, sv_app *a)
{
    if (a->deploy_image[0] == '\0') {
        return;
    }
    char image[PATH_MAX], url[1024], msg[512];
    snprintf(image, sizeof image, "%s", a->deploy_image);
    snprintf(url, sizeof url, "%s", a->deploy_url);
    a->deploy_image[0] = '\0';
    sv_err e = sv_app_install(d, image, msg, sizeof msg);
    if (e != SV_OK) {
        report(d, url, "refused", msg);
        return;
    }
    report(d, url, "installed", msg);
    if (sv_app_start(d, a, msg, sizeof msg) != SV_OK) {
        report(d, url, "failed", msg);
    }
}
