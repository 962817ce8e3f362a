/* Names for the shared status values. */
#include "keel/status.h"

const char *keel_status_name(keel_status s)
{
    static const char *const names[KEEL_STATUS_COUNT] = {
        [KEEL_OK] = "KEEL_OK",
        [KEEL_ERR_INVALID_ARG] = "KEEL_ERR_INVALID_ARG",
        [KEEL_ERR_NO_SPACE] = "KEEL_ERR_NO_SPACE",
        [KEEL_ERR_TIMEOUT] = "KEEL_ERR_TIMEOUT",
        [KEEL_ERR_IO] = "KEEL_ERR_IO",
        [KEEL_ERR_NOT_FOUND] = "KEEL_ERR_NOT_FOUND",
        [KEEL_ERR_DENIED] = "KEEL_ERR_DENIED",
        [KEEL_ERR_BUSY] = "KEEL_ERR_BUSY",
        [KEEL_ERR_PROTOCOL] = "KEEL_ERR_PROTOCOL",
        [KEEL_ERR_CORRUPT] = "KEEL_ERR_CORRUPT",
        [KEEL_ERR_UNSUPPORTED] = "KEEL_ERR_UNSUPPORTED",
        [KEEL_ERR_CLOSED] = "KEEL_ERR_CLOSED",
    };
    if ((unsigned)s >= KEEL_STATUS_COUNT) {
        return "KEEL_STATUS_UNKNOWN";
    }
    return names[s];
}
