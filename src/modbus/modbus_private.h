/* Private helpers shared by the MODBUS core's files: big-endian fields as on the wire. */
#ifndef KEEL_MODBUS_PRIVATE_H
#define KEEL_MODBUS_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xFF);
}

/* strnlen, which strict C11 (newlib on the real-time core) does not declare. */
static inline size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n]) {
        n++;
    }
    return n;
}

#endif
