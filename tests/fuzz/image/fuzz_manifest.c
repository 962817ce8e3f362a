/* Fuzzes the manifest parser and the chunk table it exposes. */
#include <stddef.h>
#include <stdint.h>

#include "keel/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keel_release m;
    keel_image_error err;
    if (keel_release_parse(data, size, &m, &err) == KEEL_IMAGE_OK) {
        /* The chunk table must lie inside the input: touch all of it. */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)m.chunk_count * KEEL_IMAGE_HASH_SIZE; i++) {
            sum = (uint8_t)(sum + m.chunk_hashes[i]);
        }
        (void)sum;
    }
    static const keel_image_pubkey key = {{0}, {0}};
    keel_image_keys keys = {&key, 1};
    (void)keel_release_verify(data, size, &keys, &m, &err);
    return 0;
}
