/* CRC-16/MODBUS, slice-by-8.
 *
 * The byte-wise table method (what libmodbus does) makes one dependent table lookup per byte:
 * each step waits for the previous CRC. Slice-by-8 folds the running CRC into the first two of
 * eight bytes and looks all eight up in independent tables, so the CPU overlaps the loads.
 * The tables are const (4 KiB of flash on the real-time core, no start-up cost). */
#include <string.h>

#include "keel/modbus.h"

#include "crc_tables.h"

uint16_t keel_modbus_crc16_update(uint16_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo;
        uint32_t hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = crc_tables[7][lo & 0xFF] ^ crc_tables[6][(lo >> 8) & 0xFF] ^
              crc_tables[5][(lo >> 16) & 0xFF] ^ crc_tables[4][lo >> 24] ^
              crc_tables[3][hi & 0xFF] ^ crc_tables[2][(hi >> 8) & 0xFF] ^
              crc_tables[1][(hi >> 16) & 0xFF] ^ crc_tables[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) {
        crc = (uint16_t)((crc >> 8) ^ crc_tables[0][(crc ^ *p++) & 0xFF]);
    }
    return crc;
}

uint16_t keel_modbus_crc16(const uint8_t *data, size_t len)
{
    return keel_modbus_crc16_update(0xFFFF, data, len);
}

uint16_t keel_modbus_crc16_bytewise(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    while (n--) {
        crc = (uint16_t)((crc >> 8) ^ crc_tables[0][(crc ^ *p++) & 0xFF]);
    }
    return crc;
}
