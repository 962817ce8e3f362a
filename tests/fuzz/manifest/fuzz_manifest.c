/* Fuzzes app_manifest.json parsing; whatever parses must also survive the pairing rule and
 * round-trip its UUID through text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keel_manifest m;
    keel_manifest_error err;
    if (keel_manifest_parse("fuzz", (const char *)data, size, &m, &err) != KEEL_MANIFEST_OK) {
        if (memchr(err.msg, '\0', sizeof err.msg) == NULL)
            abort();
        return 0;
    }
    char s[KEEL_MANIFEST_UUID_STR];
    keel_uuid back;
    keel_manifest_uuid_format(&m.id, s);
    if (!keel_manifest_uuid_parse(s, &back) || !keel_manifest_uuid_equal(&back, &m.id))
        abort();
    if (m.caps.n_partners > KEEL_MANIFEST_MAX_PARTNERS)
        abort();
    (void)keel_manifest_pair_allowed(&m, &m, &err);
    return 0;
}
