/* Keel's shared status: used only where modules meet (the keel tool, keeld, the app SDK).
 * Each module has its own error enum with a name for every value (see docs/CONTRIBUTING.md);
 * a module maps its errors onto keel_status at its boundary when a caller needs one type. */
#ifndef KEEL_STATUS_H
#define KEEL_STATUS_H

/* Results a caller must not ignore. */
#define KEEL_NODISCARD __attribute__((warn_unused_result))

typedef enum keel_status {
    KEEL_OK = 0,
    KEEL_ERR_INVALID_ARG,   /* a bad argument from the caller */
    KEEL_ERR_NO_SPACE,      /* a buffer, ring, disk or quota is full */
    KEEL_ERR_TIMEOUT,       /* a deadline passed */
    KEEL_ERR_IO,            /* the operating system said no (errno has more) */
    KEEL_ERR_NOT_FOUND,     /* no such file, component, key, ... */
    KEEL_ERR_DENIED,        /* not permitted by a manifest or a policy */
    KEEL_ERR_BUSY,          /* try again later */
    KEEL_ERR_PROTOCOL,      /* the peer broke the protocol */
    KEEL_ERR_CORRUPT,       /* data failed a check (CRC, hash, signature, format) */
    KEEL_ERR_UNSUPPORTED,   /* valid but not implemented here */
    KEEL_ERR_CLOSED,        /* the peer or the channel is gone */
    KEEL_STATUS_COUNT
} keel_status;

/* "KEEL_OK", "KEEL_ERR_TIMEOUT", ...; "KEEL_STATUS_UNKNOWN" for out-of-range values. */
const char *keel_status_name(keel_status s);

#endif
