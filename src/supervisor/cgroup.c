/* Per-app cgroups: a process-count limit (pids), a memory limit and a CPU quota, where the
 * kernel offers the controllers. cgroup v1 (one hierarchy per controller, what this project's
 * machines mount) and v2 (one unified hierarchy) are both handled; each keeld instance keeps
 * its apps under its own subtree keel-<pid>, so two keelds (or two tests) never share one.
 * The child joins the groups itself before it drops root (sandbox.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor.h"

#define CG_ROOT "/sys/fs/cgroup"

static bool exists(const char *p)
{
    return access(p, F_OK) == 0;
}

static bool write_text(const char *dir, const char *file, const char *text)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok;
}

static bool read_text(const char *dir, const char *file, char *buf, size_t cap)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) {
        return false;
    }
    buf[n] = '\0';
    return true;
}

void sv_cgroup_probe(sv_caps *caps)
{
    caps->cg_pids = caps->cg_memory = caps->cg_cpu = caps->cg_v2 = false;
    if (!caps->root) {
        return;
    }
    char ctl[256];
    if (read_text(CG_ROOT, "cgroup.controllers", ctl, sizeof ctl)) {
        caps->cg_v2 = true;
        caps->cg_pids = strstr(ctl, "pids") != NULL;
        caps->cg_memory = strstr(ctl, "memory") != NULL;
        caps->cg_cpu = strstr(ctl, "cpu") != NULL;
        return;
    }
    caps->cg_pids = exists(CG_ROOT "/pids/cgroup.procs");
    caps->cg_memory = exists(CG_ROOT "/memory/cgroup.procs");
    caps->cg_cpu = exists(CG_ROOT "/cpu/cpu.cfs_quota_us");
}

static bool mkdir_p2(const char *parent, const char *inst, const char *app, char *out)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", parent, inst);
    if (mkdir(p, 0755) < 0 && errno != EEXIST) {
        return false;
    }
    if (snprintf(out, PATH_MAX, "%s/%s", p, app) >= PATH_MAX) {
        return false;
    }
    return mkdir(out, 0755) == 0 || errno == EEXIST;
}

void sv_cgroup_create(const sv_daemon *d, sv_app *a)
{
    const sv_caps *c = &d->caps;
    char v[64];
    memset(&a->cg, 0, sizeof a->cg);
    if (c->cg_v2) {
        char inst[PATH_MAX];
        snprintf(inst, sizeof inst, CG_ROOT "/%s", d->cg_instance);
        if (mkdir(inst, 0755) < 0 && errno != EEXIST) {
            return;
        }
        /* controllers must be enabled for the children of the instance group */
        write_text(inst, "cgroup.subtree_control", "+pids +memory +cpu");
        char dir[PATH_MAX];
        if (!mkdir_p2(CG_ROOT, d->cg_instance, a->m.name, dir)) {
            return;
        }
        snprintf(v, sizeof v, "%u", a->m.max_procs);
        if (c->cg_pids && write_text(dir, "pids.max", v)) {
            snprintf(a->cg.pids, sizeof a->cg.pids, "%s", dir);
        }
        snprintf(v, sizeof v, "%llu", (unsigned long long)a->m.memory_bytes);
        if (c->cg_memory && write_text(dir, "memory.max", v)) {
            write_text(dir, "memory.swap.max", "0");
            snprintf(a->cg.memory, sizeof a->cg.memory, "%s", dir);
        }
        if (c->cg_cpu && a->m.cpu_percent) {
            snprintf(v, sizeof v, "%u 100000", a->m.cpu_percent * 1000u);
            if (write_text(dir, "cpu.max", v)) {
                snprintf(a->cg.cpu, sizeof a->cg.cpu, "%s", dir);
            }
        }
        return;
    }
    char dir[PATH_MAX];
    if (c->cg_pids && mkdir_p2(CG_ROOT "/pids", d->cg_instance, a->m.name, dir)) {
        snprintf(v, sizeof v, "%u", a->m.max_procs);
        if (write_text(dir, "pids.max", v)) {
            snprintf(a->cg.pids, sizeof a->cg.pids, "%s", dir);
        }
    }
    if (c->cg_memory && mkdir_p2(CG_ROOT "/memory", d->cg_instance, a->m.name, dir)) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)a->m.memory_bytes);
        if (write_text(dir, "memory.limit_in_bytes", v)) {
            /* memsw exists only with swap accounting; the limit holds without it too */
            write_text(dir, "memory.memsw.limit_in_bytes", v);
            snprintf(a->cg.memory, sizeof a->cg.memory, "%s", dir);
        }
    }
    if (c->cg_cpu && a->m.cpu_percent &&
        mkdir_p2(CG_ROOT "/cpu", d->cg_instance, a->m.name, dir)) {
        snprintf(v, sizeof v, "%u", a->m.cpu_percent * 1000u);
        if (write_text(dir, "cpu.cfs_period_us", "100000") &&
            write_text(dir, "cpu.cfs_quota_us", v)) {
            snprintf(a->cg.cpu, sizeof a->cg.cpu, "%s", dir);
        }
    }
}

bool sv_cgroup_oom(const sv_app *a)
{
    char buf[512];
    if (a->cg.memory[0] == '\0') {
        return false;
    }
    if (read_text(a->cg.memory, "memory.failcnt", buf, sizeof buf)) {
        return strtoull(buf, NULL, 10) > 0; /* v1 */
    }
    if (read_text(a->cg.memory, "memory.events", buf, sizeof buf)) {
        const char *p = strstr(buf, "oom_kill ");
        return p && strtoull(p + 9, NULL, 10) > 0; /* v2 */
    }
    return false;
}

/* Removes the app's groups once its processes are gone (keeld killed them first); the
 * instance directory goes too when it is empty. */
void sv_cgroup_remove(sv_app *a)
{
    char *dirs[] = {a->cg.pids, a->cg.memory, a->cg.cpu};
    for (size_t i = 0; i < 3; i++) {
        if (dirs[i][0] == '\0') {
            continue;
        }
        /* v2 shares one directory between controllers: the first rmdir removes it */
        if (rmdir(dirs[i]) == 0 || errno == ENOENT) {
            char parent[PATH_MAX];
            snprintf(parent, sizeof parent, "%s", dirs[i]);
            char *slash = strrchr(parent, '/');
            if (slash) {
                *slash = '\0';
                (void)rmdir(parent);
            }
        }
        dirs[i][0] = '\0';
    }
}
