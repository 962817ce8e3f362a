/* keeld's private interfaces: the device config, the manifest as keeld uses it, one app's
 * runtime record, and the pieces that act on them (sandbox, cgroups, crash reports, the SDK
 * broker, the control socket). The public face of keeld is the `keeld` program, its control
 * socket (spoken by `keel app`, see ctl.h) and the SDK wire (src/app/wire.h).
 *
 * keeld is one thread around one epoll loop (loop.c): nothing an app sends can block it, and
 * every timed thing (restart backoff, heartbeat, stop grace) is a deadline the loop sleeps to.
 */
#ifndef KEEL_SUPERVISOR_H
#define KEEL_SUPERVISOR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keel/icc.h"
#include "keel/image.h"
#include "keel/manifest.h"

struct cJSON;
#include "keel/status.h"
#include "wire.h"

#define SV_MAX_APPS 32
#define SV_NAME_MAX 64
#define SV_LOG_LINES 32     /* recent lines kept in memory per app, quoted by crash reports */
#define SV_LOG_LINE_MAX 200
#define SV_MAX_ARGS 8
#define SV_MAX_PARTNERS 16
#define SV_MAX_HOSTS 4

typedef enum sv_err {
    SV_OK = 0,
    SV_ERR_IO,        /* a file or directory could not be used */
    SV_ERR_CONFIG,    /* the device config or a manifest is wrong (message says where) */
    SV_ERR_SANDBOX,   /* a sandbox step failed in the child (message names it) */
    SV_ERR_NOT_FOUND, /* no such app */
    SV_ERR_STATE,     /* the app is not in a state for that (already running, ...) */
    SV_ERR_FULL,      /* too many apps */
    SV_ERR_COUNT
} sv_err;
const char *keel_supervisor_err_name(sv_err e);

/* Devices the device config names (docs/config.md, "serial" and "gpio"): an app's manifest
 * lists the names it may use and keeld opens the device and hands the fd (devices.c). */
#define SV_MAX_SERIAL 8
#define SV_MAX_GPIO 16
#define SV_DEV_NAME_MAX 32
typedef struct sv_serial_port {
    char name[SV_DEV_NAME_MAX];
    char path[256];
    uint32_t baud;     /* 0: leave the line settings as they are */
    char parity;       /* 'N', 'E', 'O' */
    uint8_t data_bits; /* 5..8 */
    uint8_t stop_bits; /* 1, 2 */
    bool rs485;        /* ask the driver for kernel RS485 mode (TIOCSRS485) */
} sv_serial_port;
typedef struct sv_gpio_line {
    char name[SV_DEV_NAME_MAX];
    char chip[256];    /* /dev/gpiochipN */
    uint32_t line;     /* offset on that chip */
    bool output;       /* direction; input otherwise */
    bool active_low;
    bool initial;      /* an output's value when requested */
} sv_gpio_line;

typedef struct sv_config {
    char state_dir[PATH_MAX]; /* keeld.sock, crashes/, logs/, data/, run/ */
    char store_dir[PATH_MAX]; /* installed packages, one directory per app */
    char socket_path[PATH_MAX];
    char broker[128];         /* host:port of the MQTT broker apps' tunnels reach, "" none */
    uint32_t base_uid;        /* app i runs as base_uid + i (and gid the same) */
    uint32_t max_crash_reports;
    uint32_t backoff_initial_ms;
    uint32_t backoff_max_ms;
    uint32_t stable_ms;       /* an app up this long has its backoff reset */
    uint32_t stop_grace_ms;   /* SIGTERM, then SIGKILL after this */
    uint32_t trial_crashes;   /* crashes during an update trial that revert it */
    uint32_t trial_ms;        /* a new version must confirm health within this */
    uint32_t method_timeout_ms; /* an app's method answer later than this: the cloud gets 504 */
    char trusted_keys[4][PATH_MAX]; /* public keys (.pub) packages must be signed with */
    int ntrusted;
    bool allow_unsigned;      /* development only: install package directories unsigned */
    struct cJSON *cloud_json; /* the "cloud" section (keel_cloud_config_from_json), or NULL */
    char hardware[32];        /* this device's hardware id; releases for others are refused */
    char release_ca[PATH_MAX]; /* CA bundle for https release servers, "": the system's */
    sv_serial_port serial[SV_MAX_SERIAL];
    int nserial;
    sv_gpio_line gpio[SV_MAX_GPIO];
    int ngpio;
} sv_config;

/* Defaults, then the file's keys (docs/config.md, "keeld device config"). */
sv_err sv_config_defaults(sv_config *c, const char *state_dir);
sv_err sv_config_load(sv_config *c, const char *path, char *msg, size_t msglen);

typedef enum sv_restart { SV_RESTART_ON_FAILURE = 0, SV_RESTART_ALWAYS, SV_RESTART_NEVER } sv_restart;

/* An app's manifest as keeld uses it. Read in exactly one place (manifest.c) so that switching
 * to the shared manifest module (include/keel/manifest.h) changes one file. */
typedef struct sv_manifest {
    char id[SV_NAME_MAX];      /* component UUID */
    char name[SV_NAME_MAX];    /* [a-z0-9_-], the app's handle everywhere */
    char version[32];
    bool realtime;             /* kind "realtime": RT-core firmware, not a Linux process */
    char exec[128];            /* path inside the package */
    char args[SV_MAX_ARGS][64];
    int nargs;
    uint32_t heartbeat_ms;     /* 0: no heartbeat required */
    uint64_t memory_bytes;     /* address-space and cgroup memory limit */
    uint32_t cpu_percent;      /* cgroup CPU quota, 0: none */
    uint32_t max_procs;        /* RLIMIT_NPROC and pids.max */
    uint32_t max_files;        /* RLIMIT_NOFILE */
    sv_restart restart;
    /* capabilities */
    bool cloud_telemetry, cloud_properties, cloud_methods, cloud_log, cloud_mqtt;
    char http_hosts[SV_MAX_HOSTS][64];
    int nhttp;
    char partners[SV_MAX_PARTNERS][SV_NAME_MAX];
    int npartners;
    keel_manifest km; /* the parsed manifest itself, for pairing intercore channels */
} sv_manifest;

sv_err sv_manifest_load(const char *pkg_dir, sv_manifest *m, char *msg, size_t msglen);
sv_err sv_manifest_parse(const char *name, const char *text, size_t len, sv_manifest *m,
                         char *msg, size_t msglen);

typedef enum sv_state {
    SV_STOPPED = 0, /* not running, not wanted */
    SV_RUNNING,
    SV_STOPPING,    /* SIGTERM sent, waiting */
    SV_BACKOFF,     /* crashed; restarts at deadline */
    SV_FAILED,      /* could not start (sandbox, exec) or restart policy says no */
    SV_STATE_COUNT
} sv_state;
const char *sv_state_name(sv_state s);

/* What the sandbox could switch on here; probed once at start-up. */
typedef struct sv_caps {
    bool root;       /* uid switch, mounts, cgroups need it */
    bool netns, mntns, ipcns, utsns;
    bool seccomp;
    bool cg_pids, cg_memory, cg_cpu;
    bool cg_v2;
} sv_caps;

typedef struct sv_cgroup {
    char pids[PATH_MAX], memory[PATH_MAX], cpu[PATH_MAX]; /* "" when not used */
} sv_cgroup;

/* A cloud method call routed to an app ("<app>.<method>"), waiting for its answer. */
#define SV_MAX_CALLS 4
typedef struct sv_call {
    bool used;
    bool taken;            /* handed to the app (keel_app_method_take) */
    uint32_t id;           /* the call id the app answers with */
    char rid[128];         /* the cloud's request id */
    char method[SV_NAME_MAX];
    char *body;            /* malloc'd JSON, body_len bytes */
    size_t body_len;
    int64_t deadline_ms;
} sv_call;

typedef struct sv_app {
    sv_manifest m;
    char pkg_dir[PATH_MAX];
    char data_dir[PATH_MAX];
    char run_dir[PATH_MAX];  /* mount point of the app's private root */
    uid_t uid;
    sv_state state;
    pid_t pid;
    int sock;                /* keeld's end of the SDK socket, -1 */
    int out;                 /* read end of the app's stdout+stderr, -1 */
    sv_cgroup cg;
    /* restart and health */
    uint32_t restarts, crashes, trial_crashes;
    uint32_t backoff_ms;
    int64_t started_ms, beat_ms, deadline_ms; /* deadline: restart (BACKOFF) or kill (hung, STOPPING) */
    bool hung;                /* heartbeat missed, SIGABRT sent */
    bool confirmed;           /* confirmed health since start */
    bool ready;               /* the app said HELLO (keel_app_open) since start */
    bool beaten;              /* any record came on its socket since start (an RT loader's
                               * heartbeat is a bare record): its heartbeat clock runs */
    bool swept;               /* no process of the app's uid is left (true after a reap) */
    bool trial;               /* a new version on trial: <store>/<name>.prev is the fallback */
    bool revert;              /* the trial failed: revert once the process is gone */
    bool forged;              /* the ring was found forged; notifications stopped */
    bool sealed;              /* verified against its kept signed image at the last start */
    uint32_t counter;         /* that image's security counter (anti-rollback) */
    const char *stop_reason;  /* for the crash report when keeld killed it */
    /* crash record from libkeel, if one came before the exit */
    keel_wire_crash crash;
    bool have_crash;
    /* notifications */
    uint64_t ring_addr;
    uint32_t ring_cap, ring_head, notify_seq, notify_dropped;
    int wake_fd;
    sv_call calls[SV_MAX_CALLS];
    /* a deployment: downloading on its own thread, or installed and waiting for the app to
     * stop (deploy.c) */
    struct sv_deploy *deploy;
    char deploy_url[1024];
    bool deploy_ready;       /* staged in the agent, on trial at the next start */
    /* the update agent holding the app's signed versions in A/B slots (slots.c); NULL for a
     * package without slots (unsigned or placed by hand) */
    struct sv_slots *slots;
    int64_t trial_deadline_ms; /* monotonic; the confirm deadline, counted from the trial's
                                * first start and kept across keeld restarts */
    char reverted_from[32];  /* a trial just given up: its version, for the log at start */
    char revert_why[64];
    /* recent log lines (a ring), and a partial stdout line */
    char log[SV_LOG_LINES][SV_LOG_LINE_MAX];
    uint32_t log_next;
    char partial[SV_LOG_LINE_MAX];
    size_t partial_len;
} sv_app;

/* An intercore channel keeld paired: it keeps both ends for the channel's life and hands a
 * duplicate to a component each time it opens its side (after a restart too: the region and
 * its unread messages are kept).
 * A channel with an RT component (kind "rt") is different: keeld pairs it when the RT loader
 * starts and hands the RT end to the loader at once (sv_channels_rt_start); it keeps only the
 * app's end (side A), so the app sees KEEL_ICC_ERR_PEER_GONE when the loader dies. The channel
 * is dropped then (sv_channels_rt_gone) and paired afresh at the loader's next start. */
#define SV_MAX_CHANNELS 16
typedef struct sv_channel {
    bool used;
    bool rt;                 /* side B is an RT loader; end[1] was handed over and closed */
    char id[2][SV_NAME_MAX]; /* component ids: side A, side B */
    keel_icc_end end[2];
} sv_channel;

typedef struct sv_daemon {
    sv_config cfg;
    sv_caps caps;
    sv_app apps[SV_MAX_APPS];
    int napps;
    int epfd, sigfd, ctlfd;
    bool quit;
    char cg_instance[64]; /* keel-<pid>: this keeld's cgroup subtree */
    void *seccomp;        /* the filter every app gets (scmp_filter_ctx), built once */
    keel_image_pubkey keys[4]; /* loaded from cfg.trusted_keys */
    size_t nkeys;
    sv_channel channels[SV_MAX_CHANNELS];
    struct keel_cloud *cloud;  /* the cloud link, NULL when the config has none */
    int cloud_next_ms;         /* when the link next wants a step */
    uint32_t next_call_id;     /* method call ids, daemon-wide */
    bool deploying;            /* a deployment thread runs (deploy.c): poll it from the loop */
} sv_daemon;

/* Monotonic milliseconds. */
int64_t sv_now_ms(void);
/* snprintf that says whether everything fitted (false: truncated). */
bool sv_fmt(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Logs a line from keeld itself to stderr with a timestamp. */
void sv_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* sandbox.c */
void sv_sandbox_probe(sv_caps *caps);
void sv_sandbox_describe(const sv_caps *caps, char *out, size_t outlen);
void *sv_seccomp_build(void);
/* Starts the app in its sandbox; child_sock becomes fd 3, child_out stdout and stderr.
 * Returns the pid, or -1 with the failing step in msg. */
/* child_chan (-1: none) becomes fd 5 in the child, announced as KEEL_RT_CHANNEL_FD=5: the
 * socket an RT loader reads its channel ends from. */
pid_t sv_sandbox_spawn(const sv_daemon *d, sv_app *a, int child_sock, int child_out,
                       int child_chan, char *msg,
                       size_t msglen);
/* Kills every process running as the app's uid (escaped children of a fork bomb). */
void sv_sandbox_kill_uid(const sv_daemon *d, const sv_app *a);

/* cgroup.c */
void sv_cgroup_probe(sv_caps *caps);
void sv_cgroup_create(const sv_daemon *d, sv_app *a);
void sv_cgroup_remove(sv_app *a);
/* True if the memory cgroup reports the limit was hit (for the crash reason). */
bool sv_cgroup_oom(const sv_app *a);

/* cloud.c: the cloud link keeld embeds (include/keel/cloud.h) */
int sv_cloud_open(sv_daemon *d);
void sv_cloud_service(sv_daemon *d);
/* Sends a summary of crash report seq to the cloud (best effort: queued durably). */
void sv_cloud_crash(sv_daemon *d, const sv_app *a, uint32_t seq, int wstatus, const char *reason);

/* Method calls routed to apps: the next one for the app (KEEL_WIRE_METHOD_TAKE's answer into
 * out), and the app's answer (keel_wire_method + JSON), which goes to the cloud. */
keel_app_status sv_cloud_method_take(sv_daemon *d, sv_app *a, char *out, size_t cap,
                                     size_t *outlen);
keel_app_status sv_cloud_method_answer(sv_daemon *d, sv_app *a, const char *p, size_t len);
/* The app's process ended: its calls are answered 503 at once rather than 504 later. */
void sv_cloud_app_gone(sv_daemon *d, sv_app *a);

/* deploy.c: a desired-properties document from the cloud; applies {"update": ...} */
void sv_deploy_desired(sv_daemon *d, const char *json);
/* Starts the app's staged deployment on trial, if any (the app has stopped). */
void sv_deploy_pending(sv_daemon *d, sv_app *a);
/* At start-up: resumes a deployment a previous keeld was downloading for this app. */
void sv_deploy_resume(sv_daemon *d, sv_app *a);
/* keeld is exiting: cancels the download and manifest threads and joins them (a download
 * resumes at the next start). */
void sv_deploy_shutdown(sv_daemon *d);
/* The app's deployment in one line for `keel app status NAME`: "none", or its state, chunks
 * and manifest URL (downloading, staged, retrying in N ms after a network failure). */
void sv_deploy_describe(const sv_app *a, char *out, size_t cap);
/* From the loop's tick: collects progress and outcomes of deployment threads; true while any
 * runs (the loop then wakes every SV_DEPLOY_POLL_MS). */
bool sv_deploy_poll(sv_daemon *d);
#define SV_DEPLOY_POLL_MS 100

/* slots.c: the update agent behind signed packages (include/keel/update.h) */
/* Opens the app's slots if it has some (or creates them from the kept image of a package a
 * keeld without slots installed); *has says whether it does now. */
sv_err sv_slots_attach(sv_daemon *d, sv_app *a, char *msg, size_t msglen);
/* Stages a verified signed image for app `name`: provisions the slots on a first install
 * (*trial false) or stages it in the inactive slot and arms a trial (*trial true). *slots is
 * the app's slots or NULL (then a new handle is returned in it). */
sv_err sv_slots_install(sv_daemon *d, const char *name, const uint8_t *image, size_t len,
                        struct sv_slots **slots, bool *trial, char *msg, size_t msglen);
/* Before a start: the agent's boot decision (counts a trial start durably, reverts a trial
 * whose starts or deadline are used up), then the store directory is made the chosen slot's
 * package (swapped in whole). Sets a->trial and a->trial_deadline_ms. */
sv_err sv_slots_boot(sv_daemon *d, sv_app *a, char *msg, size_t msglen);
/* The app on trial confirmed its health (keel_app_confirm_health). */
void sv_slots_confirm(sv_daemon *d, sv_app *a);
/* Gives the trial up durably; the next start runs the confirmed version. */
void sv_slots_revert(sv_daemon *d, sv_app *a, const char *why);
/* Grows the app's slots (files) to hold an image of image_size bytes, before a download. */
sv_err sv_slots_reserve(sv_daemon *d, sv_app *a, uint32_t image_size, char *msg, size_t msglen);
/* The trial has used up its starts (each crashed): revert rather than restart. */
bool sv_slots_trial_used_up(const sv_app *a);
/* The agent, for deploy.c (NULL without slots), and whether a deployment thread owns it. */
struct keel_update_agent *sv_slots_agent(sv_app *a);
void sv_slots_busy(sv_app *a, bool busy);
/* An app's version and trial as `keel app list` / `keel app status NAME` show them. */
typedef struct sv_trial_view {
    char slot;               /* 'A' or 'B' running, '-' without slots or not booted yet */
    bool on_trial, confirmed;
    uint32_t trial_used, trial_allowed; /* trial starts counted (slots) or crashes (unsigned) */
    int64_t left_ms;         /* confirm deadline left while running on trial, else -1 */
    char reverted_from[32];  /* the version last given up, "" if none */
} sv_trial_view;
void sv_slots_describe(const sv_daemon *d, const sv_app *a, sv_trial_view *v);
void sv_slots_close(sv_app *a);

/* crash.c: writes a report for an app that ended; returns its sequence number. */
uint32_t sv_crash_write(const sv_daemon *d, sv_app *a, int wstatus, const char *reason);
/* Prints the newest `count` reports (or fewer) of an app to fd. */
int sv_crash_list(const sv_daemon *d, const char *name, int count, int fd);

/* elfsym.c: "function+0x12" for a file offset-adjusted address, or false. */
bool sv_elf_symbolize(const char *path, uint64_t addr, char *out, size_t outlen);

/* applog.c */
void sv_applog_line(const sv_daemon *d, sv_app *a, const char *src, const char *line,
                    size_t len);
void sv_applog_output(const sv_daemon *d, sv_app *a, const char *buf, size_t len);
int sv_applog_tail(const sv_daemon *d, const char *name, int lines, int fd);

/* devices.c: the "serial" and "gpio" sections of the device config (root is the whole
 * document; false with a message naming the key), and the fds handed to apps: opened when the
 * app's manifest lists `name` (else KEEL_APP_ERR_DENIED) and the config has it (else
 * KEEL_APP_ERR_NOT_FOUND). */
bool sv_devices_config(sv_config *c, const struct cJSON *root, char *msg, size_t msglen);
keel_app_status sv_serial_open(sv_daemon *d, sv_app *a, const char *name, int *fd);
keel_app_status sv_gpio_open(sv_daemon *d, sv_app *a, const char *name, int *fd);

/* broker.c: one request from an app's socket. Returns false when the socket closed. */
bool sv_broker_handle(sv_daemon *d, sv_app *a);
/* An RT loader rt just started: pairs a fresh channel with every installed app both manifests
 * pair, sends the RT ends into sock (keel_icc_end_send, one record each) and keeps the app
 * ends. Returns how many ends were sent. */
int sv_channels_rt_start(sv_daemon *d, sv_app *rt, int sock);
/* The RT loader rt ended: its channels are closed (the apps see their peer gone). */
void sv_channels_rt_gone(sv_daemon *d, sv_app *rt);
/* Appends a notification to the app's ring and wakes it; false if it was dropped. */
bool sv_notify(sv_daemon *d, sv_app *a, uint16_t type, uint64_t arg);

/* apps.c: lifecycle */
sv_err sv_apps_scan(sv_daemon *d);
sv_err sv_app_add(sv_daemon *d, const char *pkg_dir, sv_app **out, char *msg, size_t msglen);
sv_app *sv_app_find(sv_daemon *d, const char *name);
sv_err sv_app_start(sv_daemon *d, sv_app *a, char *msg, size_t msglen);
void sv_app_stop(sv_daemon *d, sv_app *a, const char *reason);
void sv_app_reaped(sv_daemon *d, sv_app *a, int wstatus);
void sv_apps_tick(sv_daemon *d, int64_t now);
int64_t sv_apps_next_deadline(const sv_daemon *d);
sv_err sv_app_install(sv_daemon *d, const char *src_dir, char *msg, size_t msglen);
/* The app confirmed its health: a trial, if one runs, is over (called by the broker). */
void sv_app_confirmed(sv_daemon *d, sv_app *a);
/* Removes a directory tree (a staging copy). */
void sv_rm_tree(const char *dir);

/* ctl.c: the control socket */
int sv_ctl_listen(const char *path);
void sv_ctl_serve(sv_daemon *d, int conn);

/* loop.c */
#define SV_EV_SIGNAL 1u
#define SV_EV_CTL 2u
#define SV_EV_SOCK 3u
#define SV_EV_OUT 4u
#define SV_EV_CLOUD 5u
int sv_loop_watch(sv_daemon *d, int fd, uint32_t kind, uint32_t index);
void sv_loop_unwatch(sv_daemon *d, int fd);
int sv_loop_run(sv_daemon *d);

#endif
