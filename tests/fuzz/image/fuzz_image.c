/* Fuzzes the image parser: header, size fields and the TLV trailer, with and without keys. */
#include <stddef.h>
#include <stdint.h>

#include "keel/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const keel_image_pubkey key = {{0}, {0}};
    keel_image_keys keys = {&key, 1};
    keel_image_info info;
    keel_image_error err;
    keel_image_header h;
    (void)keel_image_parse_header(data, size, &h, &err);
    (void)keel_image_inspect(data, size, &info, &err);
    (void)keel_image_verify(data, size, &keys, &info, &err);
    return 0;
}
