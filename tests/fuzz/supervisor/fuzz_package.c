/* Fuzzes the package archive check (package.h: "KPKG" entries of mode, size, path, data) that
 * runs at install and again at every start, on hostile bytes: with no destination it only
 * checks, so nothing is written. The invariant: a verdict, never a fault or an overread. */
#include <stdint.h>

#include "package.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[200];
    (void)sv_package_extract(data, size, NULL, msg, sizeof msg);
    return 0;
}
