/* The benchmark's real-time-core peers: firmware/apps/icc_echo on the RTOS sim port (a host
 * process that receives its channel end over SCM_RIGHTS) and on QEMU mps2-an386 (the region a
 * host file behind the guest's PSRAM at 0x21000000, the doorbell UART1 on a Unix socket).
 * Each start() gives the connected core's endpoint; stop() sends QUIT and reaps the peer. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_icc.h"
#include "keel/manifest.h"

#define PSRAM_BYTES (16u * 1024u * 1024u)
enum { T_QUIT = 2 };

static keel_manifest manifest(const char *id, const char *kind, const char *peer)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"id\":\"%s\",\"name\":\"bench\",\"version\":\"1.0.0\",\"kind\":"
             "\"%s\",\"capabilities\":{\"intercore\":[\"%s\"]}}",
             id, kind, peer);
    keel_manifest m;
    keel_manifest_error err;
    if (keel_manifest_parse("bench", text, strlen(text), &m, &err) != KEEL_MANIFEST_OK) {
        bench_die(err.msg);
    }
    return m;
}

/* Child side of fork: stdout and stderr to /dev/null, then exec. */
static void exec_quiet(char *const argv[])
{
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    execvp(argv[0], argv);
    _exit(127);
}

bool bench_rt_sim_start(bench_rt *rt, uint32_t spin_ns)
{
    memset(rt, 0, sizeof *rt);
    char exe[512];
    snprintf(exe, sizeof exe, "%s/firmware/apps/icc_echo/fw_icc_echo", KEEL_BENCH_BUILD_DIR);
    if (access(exe, X_OK) != 0)
        return false;
    keel_manifest hl = manifest("11111111-2222-3333-4444-555555555555", "app",
                                "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    keel_manifest fw = manifest("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "rt",
                                "11111111-2222-3333-4444-555555555555");
    keel_icc_end ea, eb;
    keel_icc_config cfg = {.ring_bytes = 256 * 1024, .max_msg = 1024};
    int sv[2];
    if (keel_icc_pair(&hl, &fw, &cfg, &ea, &eb, NULL) != KEEL_ICC_OK ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) {
        bench_die("sim: pair");
    }
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    rt->pid = fork();
    if (rt->pid == 0) {
        char fd[16];
        snprintf(fd, sizeof fd, "%d", sv[1]);
        char *argv[] = {exe, fd, NULL};
        exec_quiet(argv);
    }
    close(sv[1]);
    if (rt->pid < 0 || keel_icc_end_send(sv[0], &eb) != KEEL_ICC_OK)
        bench_die("sim: handover");
    close(sv[0]);
    keel_icc_end_close(&eb);
    keel_icc_open_opts opts = {.spin_ns = spin_ns};
    if (keel_icc_open(&ea, &opts, &rt->c) != KEEL_ICC_OK)
        bench_die("sim: open");
    return true;
}

bool bench_rt_qemu_start(bench_rt *rt, uint32_t spin_ns)
{
    memset(rt, 0, sizeof *rt);
    char elf[512];
    snprintf(elf, sizeof elf, "%s/build/fw/firmware/apps/icc_echo/fw_icc_echo.elf",
             KEEL_BENCH_SOURCE_DIR);
    if (access(elf, R_OK) != 0 || system("command -v qemu-system-arm >/dev/null") != 0) {
        return false;
    }
    snprintf(rt->shm, sizeof rt->shm, "/dev/shm/keel-icc-bench-%d", (int)getpid());
    snprintf(rt->sock, sizeof rt->sock, "/tmp/keel-icc-bench-%d.sock", (int)getpid());
    int fd = open(rt->shm, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, PSRAM_BYTES) != 0)
        bench_die("qemu: memory file");
    rt->mem_len = PSRAM_BYTES;
    rt->mem = mmap(NULL, PSRAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    keel_icc_layout l = {.ring_bytes = 256 * 1024, .max_msg = 1024};
    if (rt->mem == MAP_FAILED || keel_icc_region_init(rt->mem, PSRAM_BYTES, &l) != KEEL_ICC_OK) {
        bench_die("qemu: region");
    }
    int lis = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", rt->sock);
    unlink(rt->sock);
    if (bind(lis, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lis, 1) != 0) {
        bench_die("qemu: doorbell socket");
    }
    rt->pid = fork();
    if (rt->pid == 0) {
        char chardev[256], backend[256];
        snprintf(chardev, sizeof chardev, "socket,id=bell,path=%s", rt->sock);
        snprintf(backend, sizeof backend,
                 "memory-backend-file,id=ram,size=16M,mem-path=%s,share=on", rt->shm);
        char *argv[] = {"qemu-system-arm",
                        "-M",
                        "mps2-an386",
                        "-nographic",
                        "-monitor",
                        "none",
                        "-serial",
                        "null",
                        "-chardev",
                        chardev,
                        "-serial",
                        "chardev:bell",
                        "-object",
                        backend,
                        "-machine",
                        "memory-backend=ram",
                        "-semihosting-config",
                        "enable=on,target=native",
                        "-kernel",
                        elf,
                        NULL};
        exec_quiet(argv);
    }
    struct pollfd p = {.fd = lis, .events = POLLIN};
    if (rt->pid < 0 || poll(&p, 1, 20000) != 1)
        bench_die("qemu: did not connect");
    int sock = accept4(lis, NULL, NULL, SOCK_CLOEXEC);
    close(lis);
    keel_icc_open_opts opts = {.spin_ns = spin_ns};
    if (sock < 0 || keel_icc_open_uart(rt->mem, PSRAM_BYTES, KEEL_ICC_SIDE_A, sock, &opts,
                                       &rt->c) != KEEL_ICC_OK) {
        bench_die("qemu: open");
    }
    /* One echo proves the guest mapped the file: it can go from the file system now. */
    keel_icc_msg m;
    char b[4] = {0};
    if (keel_icc_send(rt->c, 1, b, sizeof b, 10000) != KEEL_ICC_OK ||
        keel_icc_recv(rt->c, &m, b, sizeof b, 20000) != KEEL_ICC_OK) {
        bench_die("qemu: first echo");
    }
    unlink(rt->shm);
    unlink(rt->sock);
    return true;
}

/* QEMU through keel-qemu, as keeld runs it: the RT end of a paired channel handed to the loader
 * on $KEEL_RT_CHANNEL_FD, the loader copying between this region and the guest's. */
bool bench_rt_qemu_loader_start(bench_rt *rt, uint32_t spin_ns)
{
    memset(rt, 0, sizeof *rt);
    char elf[512], loader[512];
    snprintf(elf, sizeof elf, "%s/build/fw/firmware/apps/icc_echo/fw_icc_echo.elf",
             KEEL_BENCH_SOURCE_DIR);
    snprintf(loader, sizeof loader, "%s/bin/keel-qemu", KEEL_BENCH_BUILD_DIR);
    if (access(elf, R_OK) != 0 || access(loader, X_OK) != 0 ||
        system("command -v qemu-system-arm >/dev/null") != 0) {
        return false;
    }
    keel_manifest hl = manifest("11111111-2222-3333-4444-555555555555", "app",
                                "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    keel_manifest fw = manifest("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "rt",
                                "11111111-2222-3333-4444-555555555555");
    keel_icc_end ea, eb;
    keel_icc_config cfg = {.ring_bytes = 256 * 1024, .max_msg = 1024};
    int sv[2];
    if (keel_icc_pair(&hl, &fw, &cfg, &ea, &eb, NULL) != KEEL_ICC_OK ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) {
        bench_die("loader: pair");
    }
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    if (keel_icc_end_send(sv[0], &eb) != KEEL_ICC_OK)
        bench_die("loader: handover");
    close(sv[0]); /* the end of the stream: one end only */
    keel_icc_end_close(&eb);
    rt->pid = fork();
    if (rt->pid == 0) {
        char fd[16];
        snprintf(fd, sizeof fd, "%d", sv[1]);
        setenv("KEEL_RT_CHANNEL_FD", fd, 1);
        unsetenv("KEEL_APP_FD");
        char *argv[] = {loader, elf, NULL};
        exec_quiet(argv);
    }
    close(sv[1]);
    keel_icc_open_opts opts = {.spin_ns = spin_ns};
    if (rt->pid < 0 || keel_icc_open(&ea, &opts, &rt->c) != KEEL_ICC_OK)
        bench_die("loader: open");
    keel_icc_msg m;
    char b[4] = {0};
    if (keel_icc_send(rt->c, 1, b, sizeof b, 10000) != KEEL_ICC_OK ||
        keel_icc_recv(rt->c, &m, b, sizeof b, 20000) != KEEL_ICC_OK) {
        bench_die("loader: first echo");
    }
    return true;
}

void bench_rt_stop(bench_rt *rt)
{
    if (keel_icc_send(rt->c, T_QUIT, NULL, 0, 5000) != KEEL_ICC_OK)
        bench_die("quit");
    int st;
    if (waitpid(rt->pid, &st, 0) != rt->pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        bench_die("real-time core did not finish cleanly");
    }
    keel_icc_close(rt->c);
    if (rt->mem)
        munmap(rt->mem, rt->mem_len);
}
