/* Shared by the MODBUS fuzz targets: a small register map to answer from, and the request
 * a master has open when the fuzzer's bytes arrive as its reply. */
#ifndef FUZZ_MODBUS_COMMON_H
#define FUZZ_MODBUS_COMMON_H

#include <string.h>

#include "keel/modbus.h"

static uint8_t fz_coils[300];
static uint16_t fz_regs[300], fz_file[50];
static keel_modbus_file fz_files[] = {{1, 50, fz_file}};

static inline void fuzz_map(keel_modbus_map *map)
{
    memset(map, 0, sizeof *map);
    map->coil_count = 300, map->coils = fz_coils;
    map->discrete_count = 300, map->discrete = fz_coils;
    map->holding_count = 300, map->holding = fz_regs;
    map->input_count = 300, map->input = fz_regs;
    map->files = fz_files, map->file_count = 1;
    map->ident[0] = "Keel";
    map->ident[1] = "fuzz";
    map->ident[2] = "1";
    map->ident[5] = "model";
}

/* Builds one of the requests a master sends, chosen by `sel`. */
static inline size_t fuzz_request(uint8_t sel, uint8_t *pdu)
{
    static uint16_t vals[3] = {1, 2, 3};
    static uint8_t bits[2] = {0xFF, 1};
    keel_modbus_file_ref ref = {1, 2, 3, vals};
    size_t n = 0;
    keel_modbus_err e;
    switch (sel % 14) {
    case 0:
        e = keel_modbus_req_read(1, 0, 10, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 1:
        e = keel_modbus_req_read(2, 0, 10, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 2:
        e = keel_modbus_req_read(3, 0, 3, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 3:
        e = keel_modbus_req_read(4, 0, 125, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 4:
        e = keel_modbus_req_write_coil(1, true, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 5:
        e = keel_modbus_req_write_register(1, 7, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 6:
        e = keel_modbus_req_write_coils(1, 9, bits, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 7:
        e = keel_modbus_req_write_registers(1, 3, vals, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 8:
        e = keel_modbus_req_mask_write(1, 3, 4, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 9:
        e = keel_modbus_req_read_write(0, 3, 1, 3, vals, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 10:
        e = keel_modbus_req_diagnostics(0, vals, 3, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 11:
        e = keel_modbus_req_read_file(&ref, 1, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    case 12:
        e = keel_modbus_req_write_file(&ref, 1, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    default:
        e = keel_modbus_req_device_id(1, 0, pdu, KEEL_MODBUS_MAX_PDU, &n);
        break;
    }
    if (e != KEEL_MODBUS_OK) {
        __builtin_trap();
    }
    return n;
}

#endif
