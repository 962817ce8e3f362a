/* A small ELF symboliser for crash reports: maps an address (relative to the object's load
 * bias) to "function+0xoff" from the file's .symtab, or .dynsym when stripped. The file is
 * untrusted input (an app's package): every offset and size is checked against the mapping
 * before it is followed. 64-bit ELF of the host's byte order only. */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor.h"

static bool in_file(size_t size, uint64_t off, uint64_t len)
{
    return off <= size && len <= size - off;
}

static bool lookup(const uint8_t *base, size_t size, uint64_t addr, char *out, size_t outlen)
{
    if (size < sizeof(Elf64_Ehdr) || memcmp(base, ELFMAG, SELFMAG) != 0 ||
        base[EI_CLASS] != ELFCLASS64) {
        return false;
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    /* the tables are read in place: their offsets must be aligned for their types */
    if (eh->e_shentsize != sizeof(Elf64_Shdr) || (eh->e_shoff & 7u) != 0 ||
        !in_file(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))) {
        return false;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (unsigned i = 0; i < eh->e_shnum; i++) {
            if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum ||
                sh[i].sh_entsize != sizeof(Elf64_Sym) || (sh[i].sh_offset & 7u) != 0 ||
                !in_file(size, sh[i].sh_offset, sh[i].sh_size)) {
                continue;
            }
            const Elf64_Shdr *str = &sh[sh[i].sh_link];
            if (!in_file(size, str->sh_offset, str->sh_size) || str->sh_size == 0) {
                continue;
            }
            const Elf64_Sym *syms = (const Elf64_Sym *)(base + sh[i].sh_offset);
            size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
            const Elf64_Sym *best = NULL;
            for (size_t k = 0; k < n; k++) {
                const Elf64_Sym *s = &syms[k];
                if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_value == 0 ||
                    s->st_value > addr) {
                    continue;
                }
                if (s->st_size && addr >= s->st_value + s->st_size) {
                    continue;
                }
                if (!best || s->st_value > best->st_value) {
                    best = s;
                }
            }
            if (best && best->st_name < str->sh_size) {
                const char *name = (const char *)base + str->sh_offset + best->st_name;
                size_t max = str->sh_size - best->st_name;
                int len = (int)strnlen(name, max < 256 ? max : 256);
                snprintf(out, outlen, "%.*s+0x%llx", len, name,
                         (unsigned long long)(addr - best->st_value));
                return true;
            }
        }
    }
    return false;
}

bool sv_elf_symbolize(const char *path, uint64_t addr, char *out, size_t outlen)
{
    /* O_NONBLOCK: a FIFO named by a hostile crash record must not stall keeld at open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > (256 << 20)) {
        close(fd);
        return false;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        return false;
    }
    bool ok = lookup(m, (size_t)st.st_size, addr, out, outlen);
    munmap(m, (size_t)st.st_size);
    return ok;
}
