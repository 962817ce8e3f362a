/* The update agent: A/B slots, resumable chunked downloads, trial boots, confirm and revert.
 *
 * The core is a state machine with no I/O of its own: it is fed a manifest, chunks, and the
 * time, and it tells its caller which chunk to fetch next and which slot to run. It keeps every
 * durable fact in a small storage interface with several backends (files on Linux, a flash
 * model with erase blocks, write granularity and power cuts for the simulator and sensors),
 * and it orders its writes so that a power cut at any storage operation leaves a device that
 * boots a complete, verified image and either resumes the update or cleanly abandons it.
 *
 * Durable state is one 640-byte record, kept twice (ping-pong, newest valid sequence wins,
 * SHA-256 checked), plus the manifest of the download in progress. A chunk is marked done only
 * after its bytes are synced, so a reboot re-fetches at most the chunk that was landing.
 *
 * Typical use (keeld):
 *   keel_update_open(&cfg, &agent, &err);
 *   keel_update_boot(agent, now_ms, &boot, &err);      once per start: which slot to run
 *   ... start boot.slot's image ...
 *   keel_update_fetch(agent, url, &opts, &stats, &err); download + stage (libcurl, ranges)
 *   keel_update_install(agent, &err);                   check the image, arm the trial
 *   ... restart: keel_update_boot() now runs the new slot on trial ...
 *   keel_update_confirm(agent, &err) once healthy, or keel_update_revert(agent, &err);
 *   keel_update_tick(agent, now_ms, &reboot) reverts by itself when the trial deadline passes.
 *
 * A MODBUS sensor runs the same agent on its flash with the image pushed to it in order
 * (keel_update_push_*); the gateway's side is keel_update_sensor_push over a
 * keel_update_sensor_link (keel_update_sensor_link_modbus for MODBUS TCP/RTU). The profile's
 * registers and files are documented in docs/updates.md.
 */
#ifndef KEEL_UPDATE_H
#define KEEL_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/image.h"
#include "keel/status.h"

struct keel_modbus_client;

typedef enum keel_update_err {
    KEEL_UPDATE_OK = 0,
    KEEL_UPDATE_ERR_ARG,          /* a bad argument from the caller */
    KEEL_UPDATE_ERR_STORAGE,      /* the storage backend failed (or lost power) */
    KEEL_UPDATE_ERR_GEOMETRY,     /* storage or chunk sizes that cannot work together */
    KEEL_UPDATE_ERR_STATE,        /* not allowed in the current state (see the message) */
    KEEL_UPDATE_ERR_MANIFEST,     /* malformed manifest */
    KEEL_UPDATE_ERR_UNKNOWN_KEY,  /* manifest or image signed by an untrusted key */
    KEEL_UPDATE_ERR_SIGNATURE,    /* a signature does not verify */
    KEEL_UPDATE_ERR_EXPIRED,      /* the manifest's expiry time has passed (freeze attack) */
    KEEL_UPDATE_ERR_TARGET,       /* for another component or hardware (mix-and-match) */
    KEEL_UPDATE_ERR_ROLLBACK,     /* security counter below the device's floor */
    KEEL_UPDATE_ERR_TOO_BIG,      /* larger than the slot, or more data than announced */
    KEEL_UPDATE_ERR_CHUNK,        /* a chunk with the wrong index, size or SHA-256 */
    KEEL_UPDATE_ERR_IMAGE,        /* the staged image fails verification */
    KEEL_UPDATE_ERR_NO_IMAGE,     /* no slot holds a bootable image */
    KEEL_UPDATE_ERR_FETCH,        /* the network fetch failed after its retries */
    KEEL_UPDATE_ERR_UP_TO_DATE,   /* the manifest names the version already running */
    KEEL_UPDATE_ERR_CANCELLED,    /* the caller's cancel flag stopped a fetch or push */
    KEEL_UPDATE_ERR_COUNT
} keel_update_err;

const char *keel_update_err_name(keel_update_err e);

typedef struct keel_update_error {
    char msg[256];
} keel_update_error;

/* ---- storage ------------------------------------------------------------------------------- */

typedef enum keel_update_area {
    KEEL_UPDATE_SLOT_A = 0,
    KEEL_UPDATE_SLOT_B = 1,
    KEEL_UPDATE_AREA_MANIFEST = 2, /* the manifest of the download in progress */
    KEEL_UPDATE_AREA_STATE = 3,    /* two copies of the state record */
    KEEL_UPDATE_AREA_COUNT
} keel_update_area;

/* The storage contract. Offsets and lengths of write and erase are multiples of write_size and
 * erase_size; a write goes only to erased bytes (0xff). Nothing written or erased is durable
 * until sync() of that area returns 0: a power cut loses every write and erase since the last
 * sync, as on real hardware. Each function returns 0 or -1. */
typedef struct keel_update_storage {
    void *ctx;
    int (*read)(void *ctx, keel_update_area a, uint32_t off, void *buf, uint32_t len);
    int (*write)(void *ctx, keel_update_area a, uint32_t off, const void *buf, uint32_t len);
    int (*erase)(void *ctx, keel_update_area a, uint32_t off, uint32_t len);
    int (*sync)(void *ctx, keel_update_area a);
    uint32_t size[KEEL_UPDATE_AREA_COUNT];
    uint32_t erase_size; /* power of two */
    uint32_t write_size; /* power of two, <= erase_size */
} keel_update_storage;

/* File backend: DIR/slot-a, DIR/slot-b, DIR/manifest, DIR/state (created at the given sizes;
 * slot_size a multiple of 256); sync is fdatasync. *out is valid until
 * keel_update_file_storage_close. */
KEEL_NODISCARD keel_update_err keel_update_file_storage_open(const char *dir, uint32_t slot_size,
                                                             keel_update_storage *out,
                                                             keel_update_error *err);
void keel_update_file_storage_close(keel_update_storage *s);
/* The path of a slot's file, for a caller that runs an image from it. */
void keel_update_file_slot_path(const char *dir, int slot, char *out, size_t cap);

/* Flash model: erase blocks, write granularity, writes only to erased bytes, and power cuts.
 * Every write, erase and sync counts as one operation; with cut_at(n) set, operation n fails
 * and the flash "loses power": everything not yet synced is lost and every operation fails
 * until keel_update_flash_power_on(). */
typedef struct keel_update_flash keel_update_flash;
typedef struct keel_update_flash_geometry {
    uint32_t slot_size, manifest_size, erase_size, write_size;
} keel_update_flash_geometry;

keel_update_flash *keel_update_flash_create(const keel_update_flash_geometry *g);
void keel_update_flash_destroy(keel_update_flash *f);
void keel_update_flash_storage(keel_update_flash *f, keel_update_storage *out);
uint64_t keel_update_flash_ops(const keel_update_flash *f);
void keel_update_flash_cut_at(keel_update_flash *f, uint64_t op); /* 0: never */
typedef enum keel_update_cut_mode {
    KEEL_UPDATE_CUT_LOSE = 0, /* the cut loses every write and erase not yet synced */
    KEEL_UPDATE_CUT_TORN = 1, /* everything done stays; the cut operation is half done */
} keel_update_cut_mode;
void keel_update_flash_cut_mode(keel_update_flash *f, keel_update_cut_mode m);
bool keel_update_flash_powered(const keel_update_flash *f);
void keel_update_flash_power_on(keel_update_flash *f);
/* Persists the durable contents to a file and back (a simulated device's flash chip). */
KEEL_NODISCARD int keel_update_flash_save(const keel_update_flash *f, const char *path);
KEEL_NODISCARD int keel_update_flash_load(keel_update_flash *f, const char *path);

/* ---- the agent ----------------------------------------------------------------------------- */

typedef enum keel_update_state {
    KEEL_UPDATE_IDLE = 0,        /* running the confirmed image; nothing in progress */
    KEEL_UPDATE_DOWNLOADING = 1, /* chunks landing in the inactive slot */
    KEEL_UPDATE_TRIAL = 2,       /* the other slot is armed / running on trial */
} keel_update_state;

const char *keel_update_state_name(keel_update_state s);

typedef struct keel_update_config {
    const keel_update_storage *storage;
    keel_image_keys keys;                     /* trusted keys for manifests and images */
    uint8_t component[KEEL_IMAGE_UUID_SIZE];  /* what this agent updates */
    char hardware[KEEL_RELEASE_HW_SIZE + 1]; /* this device's hardware id */
    uint8_t max_trial_boots;                  /* boots on trial before revert; 0: 3 */
    uint32_t trial_timeout_ms;                /* confirm deadline after boot; 0: 60000 */
} keel_update_config;

typedef struct keel_update_agent keel_update_agent;

/* Writes a signed image into slot A and a fresh state record: a factory-new device. */
KEEL_NODISCARD keel_update_err keel_update_provision(const keel_update_storage *s,
                                                     const uint8_t *image, size_t len,
                                                     keel_update_error *err);

KEEL_NODISCARD keel_update_err keel_update_open(const keel_update_config *cfg,
                                                keel_update_agent **out, keel_update_error *err);
void keel_update_close(keel_update_agent *a);

typedef struct keel_update_boot_info {
    int slot;                     /* 0 (A) or 1 (B): run this one */
    bool trial;                   /* it runs on trial and must confirm */
    bool reverted;                /* a trial was given up during this boot */
    keel_image_info image;        /* the verified image in that slot */
} keel_update_boot_info;

/* The boot decision, once per start (the bootloader's job): counts a trial boot durably before
 * running it, reverts when the trial has used its boots or its image fails verification, and
 * verifies the image it picks (signature, component, security counter). */
KEEL_NODISCARD keel_update_err keel_update_boot(keel_update_agent *a, uint64_t now_ms,
                                                keel_update_boot_info *out,
                                                keel_update_error *err);

/* Starts (or resumes, for the same manifest) a download. Checks signature, expiry against
 * now_unix, component, hardware, security counter, size and geometry. */
KEEL_NODISCARD keel_update_err keel_update_begin(keel_update_agent *a, const uint8_t *manifest,
                                                 size_t len, uint64_t now_unix,
                                                 keel_update_error *err);

typedef struct keel_update_chunk_req {
    uint32_t index;
    uint32_t offset; /* in the image file */
    uint32_t length;
} keel_update_chunk_req;

/* The next chunk still missing; false when none is (or no download is in progress). */
bool keel_update_next_chunk(const keel_update_agent *a, keel_update_chunk_req *req);
/* The image file name the manifest names (relative to the manifest's URL); "" if none. */
const char *keel_update_image_name(const keel_update_agent *a);
/* Checks a chunk against the manifest and stores it durably. A chunk already stored is OK. */
KEEL_NODISCARD keel_update_err keel_update_chunk(keel_update_agent *a, uint32_t index,
                                                 const uint8_t *data, size_t len,
                                                 keel_update_error *err);
/* A run of `count` consecutive chunks from `first` (data holds them back to back, len their
 * total): each checked against the manifest, then the ones not yet stored are written, synced
 * once and recorded in one state-record commit. The same guarantee as chunk by chunk (the
 * record never names a chunk before its bytes are synced), with one sync and one commit per
 * run instead of two per chunk. A bad chunk stores nothing of the run. */
KEEL_NODISCARD keel_update_err keel_update_chunks(keel_update_agent *a, uint32_t first,
                                                  uint32_t count, const uint8_t *data,
                                                  size_t len, keel_update_error *err);
/* All chunks stored: verifies the whole staged image and arms the trial. Restart next. */
KEEL_NODISCARD keel_update_err keel_update_install(keel_update_agent *a, keel_update_error *err);
/* The running trial is healthy: make it the confirmed image and raise the security floor. */
KEEL_NODISCARD keel_update_err keel_update_confirm(keel_update_agent *a, keel_update_error *err);
/* Give up the trial (or the armed update): the next boot runs the previous image. */
KEEL_NODISCARD keel_update_err keel_update_revert(keel_update_agent *a, keel_update_error *err);
/* Drops a download in progress. */
KEEL_NODISCARD keel_update_err keel_update_abandon(keel_update_agent *a, keel_update_error *err);
/* Time passes: reverts a trial whose confirm deadline passed; *reboot says a restart is due. */
KEEL_NODISCARD keel_update_err keel_update_tick(keel_update_agent *a, uint64_t now_ms,
                                                bool *reboot, keel_update_error *err);

/* ---- push mode: a peer writes the image in order (the MODBUS sensor profile) ------------- */

/* Starts (or, for the same length and SHA-256, resumes) receiving an image of `len` bytes. */
KEEL_NODISCARD keel_update_err keel_update_push_begin(keel_update_agent *a, uint32_t len,
                                                      const uint8_t sha256[KEEL_IMAGE_HASH_SIZE],
                                                      keel_update_error *err);
/* Bytes at `off`; must not start past keel_update_push_next() (bytes before it are ignored). */
KEEL_NODISCARD keel_update_err keel_update_push_write(keel_update_agent *a, uint32_t off,
                                                      const uint8_t *data, uint32_t len,
                                                      keel_update_error *err);
/* Where the peer must continue: every byte before it is held (stored, or in the block being
 * filled; after a restart only stored blocks count). 0 when no push is in progress. */
uint32_t keel_update_push_next(const keel_update_agent *a);
uint32_t keel_update_push_length(const keel_update_agent *a);
/* Every byte received: checks the announced SHA-256, verifies the image and arms the trial. */
KEEL_NODISCARD keel_update_err keel_update_push_commit(keel_update_agent *a,
                                                       keel_update_error *err);

/* Local staging (keeld's `keel app install` of a signed package file): abandons any download in
 * progress, writes the whole image into the inactive slot, syncs it, verifies it in full
 * (signature, component, security counter) and arms the trial as keel_update_install does.
 * Until the record arming the trial is stored, the inactive slot is referenced by nothing, so a
 * power cut leaves the device as it was. Refused during a trial (revert or confirm first). */
KEEL_NODISCARD keel_update_err keel_update_stage(keel_update_agent *a, const uint8_t *image,
                                                 size_t len, keel_update_error *err);

/* ---- the sensor update profile over MODBUS (docs/updates.md) ------------------------------
 * A sensor exposes holding registers at `base` and takes the image as file records (FC 21):
 * byte offset o is register o/2 overall, in file 1 + (o/2)/10000, record (o/2)%10000, high
 * byte first; an odd last byte is padded with 0xff. */
#define KEEL_UPDATE_SENSOR_BASE 0x7f00u      /* default first register */
#define KEEL_UPDATE_SENSOR_RECORDS 10000u    /* records per file */
#define KEEL_UPDATE_SENSOR_MAGIC 0xc0deu     /* written to COMMIT */
enum keel_update_sensor_reg {                /* offsets from base */
    KEEL_UPDATE_SENSOR_STATE = 0,   /* R: keel_update_sensor_state; W: 1 begin, 0 abort */
    KEEL_UPDATE_SENSOR_LENGTH = 1,  /* R/W, 2 registers, high word first: image bytes */
    KEEL_UPDATE_SENSOR_NEXT = 3,    /* R, 2 registers: the next record the sensor expects */
    KEEL_UPDATE_SENSOR_SHA256 = 5,  /* R/W, 16 registers: SHA-256 of the image, high byte first */
    KEEL_UPDATE_SENSOR_COMMIT = 21, /* W: KEEL_UPDATE_SENSOR_MAGIC: verify, arm, restart */
    KEEL_UPDATE_SENSOR_ERROR = 22,  /* R: keel_update_err of the last refusal, 0 if none */
    KEEL_UPDATE_SENSOR_REGS = 23,   /* registers in the block */
};
typedef enum keel_update_sensor_state {
    KEEL_UPDATE_SENSOR_IDLE = 0,
    KEEL_UPDATE_SENSOR_RECEIVING = 1,
    KEEL_UPDATE_SENSOR_ARMED = 2,  /* verified; restarts into the new image on trial */
    KEEL_UPDATE_SENSOR_TRIAL = 3,
    KEEL_UPDATE_SENSOR_ERROR_STATE = 4,
} keel_update_sensor_state;

/* The gateway's view of one sensor: MODBUS requests as callbacks (bound to keel_modbus_client
 * by keel_update_sensor_link_modbus, or to a simulated sensor directly). Each returns 0, a MODBUS exception code
 * (> 0), or -1 when the sensor did not answer. */
typedef struct keel_update_sensor_link {
    void *ctx;
    int (*read_regs)(void *ctx, uint16_t addr, uint16_t count, uint16_t *regs);         /* FC 3 */
    int (*write_regs)(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs);  /* FC 16 */
    int (*write_file)(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                      const uint16_t *regs);                                             /* FC 21 */
    int (*read_version)(void *ctx, char *out, size_t cap);                        /* FC 43/14 */
} keel_update_sensor_link;

/* The link over MODBUS with keel_modbus_client: TCP, RTU over TCP, or RTU on a serial line
 * (RS485), reconnecting after the sensor drops a TCP connection (it restarts after a commit, or
 * loses power). Requests that time out or find no connection count as unanswered. Linked from
 * the library keel_update_sensor_modbus. */
typedef struct keel_update_sensor_modbus {
    char host[128], port[16];          /* TCP; or */
    char device[128];                  /* a serial device (RTU), when set */
    uint32_t baud;                     /* serial: 0: 19200 */
    char parity;                       /* serial: 'N', 'E' (0: 'E', the MODBUS default), 'O' */
    bool rs485;                        /* serial: ask the kernel for RS485 mode */
    bool rtu_over_tcp;
    uint8_t unit;
    uint32_t timeout_us;               /* per request; 0: 500 ms */
    struct keel_modbus_client *client; /* managed by the link */
} keel_update_sensor_modbus;
/* Fills `out` with callbacks whose ctx is `m` (which must outlive the link). */
void keel_update_sensor_link_modbus(keel_update_sensor_modbus *m, keel_update_sensor_link *out);
void keel_update_sensor_modbus_close(keel_update_sensor_modbus *m);

typedef struct keel_update_sensor_opts {
    uint16_t base;            /* 0: KEEL_UPDATE_SENSOR_BASE */
    uint16_t regs_per_write;  /* records per FC 21 request; 0: 120 (the most that fits) */
    unsigned max_silent;      /* unanswered requests in a row before giving up; 0: 50 */
    uint32_t backoff_ms;      /* first pause after an unanswered request (doubles, jittered,
                                 at most 1 s); 0: 20 */
    void (*progress)(void *ctx, uint32_t sent, uint32_t total);
    void *progress_ctx;
} keel_update_sensor_opts;

typedef struct keel_update_sensor_stats {
    uint64_t bytes_sent;      /* including any sent again after a sensor restart */
    unsigned requests, unanswered, resumes;
} keel_update_sensor_stats;

/* Verifies `image` against `keys` and pushes it to the sensor, resuming from the record the
 * sensor reports, then commits. OK once the sensor armed it (it restarts into it on trial and
 * confirms itself, or falls back; read its version with link->read_version). */
KEEL_NODISCARD keel_update_err keel_update_sensor_push(const keel_update_sensor_link *link,
                                                       const uint8_t *image, size_t len,
                                                       const keel_image_keys *keys,
                                                       const keel_update_sensor_opts *opts,
                                                       keel_update_sensor_stats *stats,
                                                       keel_update_error *err);

typedef struct keel_update_status {
    keel_update_state state;
    int running_slot;              /* -1 before keel_update_boot */
    bool running_trial;
    bool reboot_pending;           /* an install or revert waits for a restart */
    keel_image_version running_version;
    uint32_t security_floor;
    uint32_t chunks_done, chunks_total;
    keel_image_version target_version; /* of the download / trial, when there is one */
    uint8_t trial_boots;           /* boots spent on the trial (durable), of max_trial_boots */
    uint8_t max_trial_boots;
} keel_update_status;

void keel_update_get_status(const keel_update_agent *a, keel_update_status *out);

/* Jittered exponential backoff: a delay in [cap/2, cap] with cap = min(max_ms, base_ms << attempt),
 * `rnd` a random number from the caller (the core has no randomness of its own). */
uint32_t keel_update_backoff_ms(unsigned attempt, uint32_t base_ms, uint32_t max_ms, uint32_t rnd);

/* ---- fetching over HTTP(S) (libcurl) ------------------------------------------------------- */

typedef struct keel_update_fetch_opts {
    unsigned max_attempts;   /* per request before giving up; 0: 8 */
    uint32_t backoff_base_ms; /* 0: 200 */
    uint32_t backoff_max_ms;  /* 0: 30000 */
    long timeout_s;           /* per request; 0: 60 */
    const char *ca_file;      /* for https with a private CA; NULL: the system's */
    uint32_t batch_bytes;     /* chunks are stored (one sync, one record commit) in runs of
                               * up to this many bytes (and at most 1/16 of the image); 0: one
                               * chunk at a time. A run held in
                               * memory is lost if the process dies (fetched again), never
                               * half-recorded: power-fail safety is the same for any size */
    /* Progress, after each stored run of chunks; may be NULL. */
    void (*progress)(void *ctx, uint32_t done, uint32_t total);
    void *progress_ctx;
    /* When non-NULL and it becomes non-zero (another thread, a signal handler), the fetch stops
     * within a moment, mid-transfer if need be, with KEEL_UPDATE_ERR_CANCELLED; what is stored
     * stays stored, and the next fetch resumes. */
    volatile const int *cancel;
} keel_update_fetch_opts;

typedef struct keel_update_fetch_stats {
    uint64_t bytes_received;  /* image bytes received, including any fetched again */
    uint64_t bytes_stored;    /* image bytes stored in chunks this run */
    unsigned requests, retries;
} keel_update_fetch_stats;

/* Fetches the manifest at `manifest_url`, begins or resumes the download, and fetches each
 * stretch of missing chunks with one range request streamed into runs of chunks (each run
 * checked, stored and recorded with keel_update_chunks), resuming a dropped transfer where it
 * stopped. Returns OK
 * when every chunk is stored (then call keel_update_install). opts and stats may be NULL. */
KEEL_NODISCARD keel_update_err keel_update_fetch(keel_update_agent *a, const char *manifest_url,
                                                 const keel_update_fetch_opts *opts,
                                                 keel_update_fetch_stats *stats,
                                                 keel_update_error *err);

#endif
