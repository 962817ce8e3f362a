/* A libmodbus peer for Keel's tests, linked with Debian's libmodbus.
 *
 *   libmodbus_peer server tcp PORT | server rtu DEVICE
 *       serves holding[i] = 3*i (200), input[i] = 1000+i (100), coils i%2, discrete i%3==0
 *       (the same data as pymodbus_server.py); prints "ready" when listening.
 *   libmodbus_peer client tcp PORT | client rtu DEVICE
 *       checks a Keel slave serving sensor_map.json; exit 0 when every check passed.
 */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what)
{
    printf("FAIL %s: %s\n", what, modbus_strerror(errno));
    fflush(stdout);
    return 1;
}

static int serve(modbus_t *ctx, int tcp, const char *arg)
{
    modbus_mapping_t *mb = modbus_mapping_new(100, 100, 200, 100);
    for (int i = 0; i < 200; i++) {
        mb->tab_registers[i] = (uint16_t)(3 * i);
    }
    for (int i = 0; i < 100; i++) {
        mb->tab_input_registers[i] = (uint16_t)(1000 + i);
        mb->tab_bits[i] = (uint8_t)(i % 2);
        mb->tab_input_bits[i] = (uint8_t)(i % 3 == 0);
    }
    int s = -1;
    if (tcp) {
        s = modbus_tcp_listen(ctx, 1);
        if (s < 0) {
            return fail("listen");
        }
    } else if (modbus_connect(ctx) < 0) {
        return fail("open");
    }
    (void)arg;
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        if (tcp && modbus_tcp_accept(ctx, &s) < 0) {
            return fail("accept");
        }
        for (;;) {
            uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
            int n = modbus_receive(ctx, q);
            if (n > 0) {
                modbus_reply(ctx, q, n, mb);
            } else if (n < 0 && tcp) {
                break; /* connection closed: accept the next one */
            }
        }
    }
}

static int client(modbus_t *ctx)
{
    if (modbus_connect(ctx) < 0) {
        return fail("connect");
    }
    modbus_set_response_timeout(ctx, 3, 0);
    modbus_set_slave(ctx, 1);
    uint16_t r[8];
    uint8_t b[8];
    if (modbus_read_registers(ctx, 0, 4, r) != 4) {
        return fail("FC3");
    }
    if (r[0] != 215 || r[1] != 480 || r[2] != 1013 || r[3] != 65531) {
        printf("FAIL FC3 values %u %u %u %u\n", r[0], r[1], r[2], r[3]);
        return 1;
    }
    if (modbus_read_input_registers(ctx, 0, 3, r) != 3 || r[2] != 10130) {
        return fail("FC4");
    }
    if (modbus_read_bits(ctx, 0, 3, b) != 3 || b[0] != 1 || b[1] != 0 || b[2] != 1) {
        return fail("FC1");
    }
    if (modbus_read_input_bits(ctx, 0, 3, b) != 3 || b[0] != 0 || b[1] != 1) {
        return fail("FC2");
    }
    if (modbus_write_register(ctx, 40, 0x1234) != 1) {
        return fail("FC6");
    }
    const uint16_t w[3] = {7, 8, 9};
    if (modbus_write_registers(ctx, 41, 3, w) != 3) {
        return fail("FC16");
    }
    if (modbus_read_registers(ctx, 40, 4, r) != 4 || r[0] != 0x1234 || r[3] != 9) {
        return fail("FC6/FC16 read back");
    }
    if (modbus_write_bit(ctx, 20, 1) != 1) {
        return fail("FC5");
    }
    const uint8_t wb[3] = {1, 0, 1};
    if (modbus_write_bits(ctx, 21, 3, wb) != 3) {
        return fail("FC15");
    }
    if (modbus_read_bits(ctx, 20, 4, b) != 4 || b[0] != 1 || b[1] != 1 || b[2] != 0 || b[3] != 1) {
        return fail("FC5/FC15 read back");
    }
    if (modbus_mask_write_register(ctx, 40, 0x00F2, 0x0025) != 1) {
        return fail("FC22");
    }
    const uint16_t w1[1] = {99};
    if (modbus_write_and_read_registers(ctx, 50, 1, w1, 49, 2, r) != 2 || r[1] != 99) {
        return fail("FC23");
    }
    if (modbus_read_registers(ctx, 40, 1, r) != 1 || r[0] != ((0x1234 & 0xF2) | (0x25 & ~0xF2))) {
        return fail("FC22 read back");
    }
    if (modbus_read_registers(ctx, 199, 2, r) != -1 || errno != EMBXILADD) {
        printf("FAIL exception: expected illegal data address\n");
        return 1;
    }
    uint8_t id[64];
    int n = modbus_report_slave_id(ctx, sizeof id, id);
    if (n < 2 || id[n - 1] != 0xFF) {
        return fail("FC17");
    }
    printf("all checks passed\n");
    fflush(stdout);
    modbus_close(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s server|client tcp PORT|rtu DEVICE\n", argv[0]);
        return 2;
    }
    int tcp = strcmp(argv[2], "tcp") == 0;
    modbus_t *ctx = tcp ? modbus_new_tcp("127.0.0.1", atoi(argv[3]))
                        : modbus_new_rtu(argv[3], 19200, 'N', 8, 2);
    if (!ctx) {
        return fail("new");
    }
    if (!tcp) {
        modbus_set_slave(ctx, 1);
    }
    int rc = strcmp(argv[1], "server") == 0 ? serve(ctx, tcp, argv[3]) : client(ctx);
    modbus_free(ctx);
    return rc;
}
