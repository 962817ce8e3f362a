/* The capabilities an app_manifest.json may grant, one parser each. The table is the whole
 * list: a key not in it is refused by the parser, so a misspelt capability is an error rather
 * than a permission silently not granted. */
#include <string.h>

#include "manifest_private.h"

/* "intercore": ["<uuid>", ...] — the components this one may open a channel with. */
static keel_manifest_err parse_intercore(const char *file, const cJSON *value,
                                         keel_manifest_caps *caps, keel_manifest_error *err)
{
    if (!cJSON_IsArray(value)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                  "%s: capabilities.intercore: must be an array of component IDs",
                                  file);
    }
    size_t i = 0;
    for (const cJSON *it = value->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                      "%s: capabilities.intercore[%zu]: must be a string", file, i);
        }
        if (caps->n_partners == KEEL_MANIFEST_MAX_PARTNERS) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_LIMIT,
                                      "%s: capabilities.intercore: more than %d partners", file,
                                      KEEL_MANIFEST_MAX_PARTNERS);
        }
        keel_uuid id;
        if (!keel_manifest_uuid_parse(it->valuestring, &id)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: capabilities.intercore[%zu]: \"%.40s\" is not a UUID "
                                      "(8-4-4-4-12 hex digits)",
                                      file, i, it->valuestring);
        }
        for (size_t j = 0; j < caps->n_partners; j++) {
            if (keel_manifest_uuid_equal(&caps->partners[j], &id)) {
                return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                          "%s: capabilities.intercore[%zu]: listed twice", file, i);
            }
        }
        caps->partners[caps->n_partners++] = id;
    }
    return KEEL_MANIFEST_OK;
}

const keel_manifest_cap keel_manifest_caps_table[] = {
    {"intercore", parse_intercore},
};
const size_t keel_manifest_caps_count =
    sizeof keel_manifest_caps_table / sizeof keel_manifest_caps_table[0];
