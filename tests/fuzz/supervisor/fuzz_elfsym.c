/* Fuzzes the crash-report symboliser with hostile ELF files (a package is untrusted): the
 * bytes go to a memfd and are read back through its /proc path, like a package file. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "supervisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("elf", MFD_CLOEXEC);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
        return 0;
    }
    char out[300];
    uint64_t addr = size >= 8 ? *(const uint64_t *)(const void *)data % 4096 : 0;
    (void)sv_elf_symbolize(path, addr, out, sizeof out);
    return 0;
}
