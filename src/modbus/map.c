/* A register map as a slave's data model: four tables at base addresses, files of records
 * for FC 20/21, and the device-identification strings. A request that reaches outside a
 * table is ILLEGAL_DATA_ADDRESS, checked before anything changes, so a rejected write leaves
 * the map as it was. */
#include <string.h>

#include "keel/modbus.h"
#include "modbus_private.h"

static bool inside(uint16_t base, uint16_t size, uint16_t addr, uint16_t count)
{
    return addr >= base && (uint32_t)addr + count <= (uint32_t)base + size;
}

static void notify(keel_modbus_map *map, int table, uint16_t addr, uint16_t count)
{
    if (map->on_write) {
        map->on_write(map->on_write_ctx, table, addr, count);
    }
}

static uint8_t map_read_bits(void *ctx, int table, uint16_t addr, uint16_t count, uint8_t *bits)
{
    const keel_modbus_map *map = ctx;
    const uint8_t *src = table == KEEL_MODBUS_COILS ? map->coils : map->discrete;
    uint16_t base = table == KEEL_MODBUS_COILS ? map->coil_base : map->discrete_base;
    uint16_t size = table == KEEL_MODBUS_COILS ? map->coil_count : map->discrete_count;
    if (!src || !inside(base, size, addr, count)) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    for (uint16_t i = 0; i < count; i++) {
        if (src[addr - base + i]) {
            bits[i / 8] |= (uint8_t)(1u << (i % 8));
        }
    }
    return 0;
}

static uint8_t map_write_bits(void *ctx, uint16_t addr, uint16_t count, const uint8_t *bits)
{
    keel_modbus_map *map = ctx;
    if (!map->coils || !inside(map->coil_base, map->coil_count, addr, count)) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    for (uint16_t i = 0; i < count; i++) {
        map->coils[addr - map->coil_base + i] = (bits[i / 8] >> (i % 8)) & 1u;
    }
    notify(map, KEEL_MODBUS_COILS, addr, count);
    return 0;
}

static uint8_t map_read_regs(void *ctx, int table, uint16_t addr, uint16_t count, uint16_t *regs)
{
    const keel_modbus_map *map = ctx;
    const uint16_t *src = table == KEEL_MODBUS_HOLDING ? map->holding : map->input;
    uint16_t base = table == KEEL_MODBUS_HOLDING ? map->holding_base : map->input_base;
    uint16_t size = table == KEEL_MODBUS_HOLDING ? map->holding_count : map->input_count;
    if (!src || !inside(base, size, addr, count)) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    memcpy(regs, src + (addr - base), count * sizeof *regs);
    return 0;
}

static uint8_t map_write_regs(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs)
{
    keel_modbus_map *map = ctx;
    if (!map->holding || !inside(map->holding_base, map->holding_count, addr, count)) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    memcpy(map->holding + (addr - map->holding_base), regs, count * sizeof *regs);
    notify(map, KEEL_MODBUS_HOLDING, addr, count);
    return 0;
}

static keel_modbus_file *find_file(keel_modbus_map *map, uint16_t number)
{
    for (size_t i = 0; i < map->file_count; i++) {
        if (map->files[i].number == number) {
            return &map->files[i];
        }
    }
    return NULL;
}

static uint8_t map_read_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                             uint16_t *regs)
{
    keel_modbus_file *f = find_file(ctx, file);
    if (!f || (uint32_t)record + count > f->records) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    memcpy(regs, f->data + record, count * sizeof *regs);
    return 0;
}

static uint8_t map_write_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                              const uint16_t *regs)
{
    keel_modbus_map *map = ctx;
    keel_modbus_file *f = find_file(map, file);
    if (!f || (uint32_t)record + count > f->records) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    memcpy(f->data + record, regs, count * sizeof *regs);
    notify(map, -1 - (int)file, record, count); /* files: table = -1 - file number */
    return 0;
}

static const char *map_device_id(void *ctx, uint8_t id)
{
    const keel_modbus_map *map = ctx;
    return id < sizeof map->ident / sizeof map->ident[0] ? map->ident[id] : NULL;
}

static size_t map_server_id(void *ctx, uint8_t *out, size_t cap)
{
    const keel_modbus_map *map = ctx;
    const char *id = map->ident[4] ? map->ident[4] : map->ident[1] ? map->ident[1] : "keel";
    size_t n = bounded_len(id, cap);
    memcpy(out, id, n);
    return n;
}

const keel_modbus_model keel_modbus_map_model = {
    .read_bits = map_read_bits,
    .write_bits = map_write_bits,
    .read_regs = map_read_regs,
    .write_regs = map_write_regs,
    .read_file = map_read_file,
    .write_file = map_write_file,
    .device_id = map_device_id,
    .server_id = map_server_id,
};
