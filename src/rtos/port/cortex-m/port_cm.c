/* Cortex-M4F port: PendSV context switch with lazy FPU stacking, SysTick tick, BASEPRI
 * critical sections, a HardFault handler that dumps the registers.
 *
 * A thread's saved context, at thread->context (its stack pointer), is r4-r11 and its
 * EXC_RETURN, preceded by s16-s31 when the thread had FPU state (EXC_RETURN bit 4 clear),
 * under the frame the hardware stacked (r0-r3, r12, lr, pc, xpsr, and s0-s15/fpscr when the
 * FPU was in use; lazily, so a thread that never touches the FPU pays nothing).
 *
 * The idle thread has its own small stack here; keel_rtos_start() moves onto it (PSP) and
 * lowers BASEPRI, at which point the PendSV requested by thread creation switches to the
 * most urgent ready thread. */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "rtos_private.h"

#define SCB_SHPR3 (*(volatile uint32_t *)0xE000ED20u) /* PendSV [23:16], SysTick [31:24] */
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#define PRIO_PENDSV 0xffu
#define PRIO_SYSTICK 0xe0u
#define IDLE_STACK_WORDS 128u

static uint64_t __attribute__((aligned(8))) idle_stack[IDLE_STACK_WORDS / 2];
static volatile uint32_t tick_reload;

_Static_assert(offsetof(keel_rtos_thread, context) == 0, "PendSV expects context first");
_Static_assert(offsetof(struct keel_rtos_kernel, current) == 0, "PendSV layout");
_Static_assert(offsetof(struct keel_rtos_kernel, next) == 4, "PendSV layout");

void keel_port_init(void)
{
    /* Until keel_rtos_start(), everything the kernel may do (switches, ticks) is masked. */
    SCB_SHPR3 = (SCB_SHPR3 & 0x0000ffffu) | (PRIO_PENDSV << 16) | (PRIO_SYSTICK << 24);
    uint32_t level = KEEL_PORT_SYSCALL_PRIO;
    __asm volatile("msr basepri, %0\n\tisb" : : "r"(level) : "memory");
}

uint32_t keel_rtos_tick_hz(void)
{
    return KEEL_RTOS_TICK_HZ;
}

uint64_t keel_port_timestamp(void)
{
    /* CPU cycles since start: ticks plus the SysTick count within this tick. */
    uint32_t reload = tick_reload;
    return keel_rtos_k.ticks * (uint64_t)(reload + 1u) + (reload - SYST_CVR);
}

static void thread_start(keel_rtos_thread *t)
{
    t->entry(t->arg);
    kr_thread_exit();
}

static void thread_return_trap(void)
{
    keel_port_fatal("thread returned past its exit", NULL);
}

void keel_port_thread_init(keel_rtos_thread *t)
{
    uint32_t *sp = (uint32_t *)(((uintptr_t)t->stack + t->stack_size) & ~(uintptr_t)7u);
    *--sp = 0x01000000u;                                   /* xPSR: Thumb */
    *--sp = (uint32_t)(uintptr_t)thread_start & ~1u;       /* pc */
    *--sp = (uint32_t)(uintptr_t)thread_return_trap;       /* lr */
    sp -= 4;                                               /* r12, r3, r2, r1 */
    *--sp = (uint32_t)(uintptr_t)t;                        /* r0 */
    *--sp = 0xfffffffdu;                                   /* EXC_RETURN: thread, PSP, no FP */
    sp -= 8;                                               /* r11..r4 */
    t->context = sp;
}

/* Runs as the idle thread, on idle_stack, once scheduling has started. */
static _Noreturn void idle_loop(void)
{
    for (;;) {
        keel_rtos_idle_hook(keel_rtos_idle_ticks());
        __asm volatile("dsb\n\twfi" ::: "memory");
    }
}

void keel_port_start(void)
{
    uint32_t reload = BOARD_CPU_HZ / KEEL_RTOS_TICK_HZ - 1u;
    tick_reload = reload;
    SYST_RVR = reload;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
    uint32_t top = (uint32_t)(uintptr_t)&idle_stack[IDLE_STACK_WORDS / 2];
    /* Onto the idle stack (PSP), then let the pending switch happen. */
    __asm volatile("msr psp, %0\n\t"
                   "movs r0, #2\n\t"
                   "msr control, r0\n\t"
                   "isb\n\t"
                   "movs r0, #0\n\t"
                   "msr basepri, r0\n\t"
                   "isb\n\t"
                   :
                   : "r"(top)
                   : "r0", "memory");
    idle_loop();
}

#if KEEL_RTOS_RUNTIME_STATS
/* Run-time accounting at each switch (opt-in: it costs about 25 instructions a switch). Runs
 * first thing in PendSV, integer code only, so no FPU state is touched. Reading the tick
 * count and SysTick's counter is not atomic against SysTick, which is more urgent than
 * PendSV: a switch that races a tick may be attributed one tick late, never lost. */
void keel_port_account(void)
{
    keel_rtos_thread *from = keel_rtos_k.current, *to = keel_rtos_k.next;
    uint64_t now = keel_port_timestamp();
    from->run_time += now - from->run_start;
    to->run_start = now;
}
#define PENDSV_ACCOUNT "push {lr}\n\tbl keel_port_account\n\tpop {lr}\n\t"
#else
#define PENDSV_ACCOUNT ""
#endif

/* The context switch. Switches from keel_rtos_k.current to keel_rtos_k.next. An interrupt
 * that changes next while this runs pends PendSV again, so the newest choice wins. */
__attribute__((naked)) void PendSV_Handler(void)
{
    __asm volatile(PENDSV_ACCOUNT
                   "mrs r0, psp\n\t"
                   "ldr r3, =keel_rtos_k\n\t"
                   "ldr r2, [r3]\n\t"              /* current */
                   "tst lr, #0x10\n\t"
                   "it eq\n\t"
                   "vstmdbeq r0!, {s16-s31}\n\t"
                   "stmdb r0!, {r4-r11, lr}\n\t"
                   "str r0, [r2]\n\t"              /* current->context */
                   "ldr r1, [r3, #4]\n\t"          /* next */
                   "str r1, [r3]\n\t"              /* current = next */
                   "ldr r2, [r1, %[sw]]\n\t"
                   "adds r2, r2, #1\n\t"
                   "str r2, [r1, %[sw]]\n\t"       /* next->switches_in++ */
                   "ldr r0, [r1]\n\t"              /* next->context */
                   "ldmia r0!, {r4-r11, lr}\n\t"
                   "tst lr, #0x10\n\t"
                   "it eq\n\t"
                   "vldmiaeq r0!, {s16-s31}\n\t"
                   "msr psp, r0\n\t"
                   "bx lr\n\t"
                   ".ltorg\n\t"
                   :
                   : [sw] "i"(offsetof(keel_rtos_thread, switches_in)));
}

void SysTick_Handler(void)
{
    keel_rtos_tick_announce(1);
}

_Noreturn void keel_port_fatal(const char *what, const char *thread)
{
    __asm volatile("cpsid i");
    board_console_puts("\nkeel rtos: ");
    board_console_puts(what);
    if (thread != NULL) {
        board_console_puts(" (thread ");
        board_console_puts(thread);
        board_console_puts(")");
    }
    board_console_puts("\n");
    board_exit(121);
}

/* ---- HardFault: say where and why, then stop with exit code 122 ---- */

static void put_reg(const char *name, uint32_t v)
{
    board_console_puts(name);
    board_console_puts("=");
    board_console_put_hex32(v);
    board_console_puts(" ");
}

void keel_port_hardfault_dump(const uint32_t *frame, uint32_t exc_return)
{
    board_console_puts("\nkeel: HardFault\n");
    put_reg("r0", frame[0]);
    put_reg("r1", frame[1]);
    put_reg("r2", frame[2]);
    put_reg("r3", frame[3]);
    board_console_puts("\n");
    put_reg("r12", frame[4]);
    put_reg("lr", frame[5]);
    put_reg("pc", frame[6]);
    put_reg("xpsr", frame[7]);
    board_console_puts("\n");
    put_reg("cfsr", SCB_CFSR);
    put_reg("hfsr", SCB_HFSR);
    put_reg("mmfar", SCB_MMFAR);
    put_reg("bfar", SCB_BFAR);
    put_reg("exc_return", exc_return);
    board_console_puts("\n");
    const keel_rtos_thread *t = keel_rtos_k.current;
    if (keel_rtos_k.started && t != NULL && (exc_return & 4u)) {
        board_console_puts("thread: ");
        board_console_puts(t->name ? t->name : "?");
        board_console_puts("\n");
    }
    board_exit(122);
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile("tst lr, #4\n\t"
                   "ite eq\n\t"
                   "mrseq r0, msp\n\t"
                   "mrsne r0, psp\n\t"
                   "mov r1, lr\n\t"
                   "b keel_port_hardfault_dump\n\t");
}
