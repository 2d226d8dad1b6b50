/* An AVX-512 processor that says it has AVX2 only, for measuring what an AVX2 machine runs.

   Linux x86-64, on a processor with CPUID faulting ("cpuid_fault" in /proc/cpuinfo): `run.py --avx2-only` builds
   it and preloads it into every measured process; by hand:
       gcc -O2 -shared -fPIC -o avx2_only.so benchmarks/avx2_only.c -ldl
       LD_PRELOAD=$PWD/avx2_only.so python ...

   Every library chooses its kernels from the CPUID instruction (torch's ATen and inductor, MKL, oneDNN, ONNX
   Runtime's MLAS, CTranslate2, gcc -march=native). Once loaded, this makes CPUID fault in every thread of the
   process; the fault's handler runs the instruction itself and clears the AVX-512 and AMX feature bits from what it
   returns. The preload reaches child processes through the environment (a new program starts with CPUID allowed
   again). A handler the program installs for SIGSEGV later is kept behind this one and gets every other fault.
   The microarchitecture and the memory stay this machine's: only the instruction set is an AVX2 one.
   torch's inductor keys its cache of compiled code by its settings, not by the processor, so its kernels written
   for AVX-512 would be handed back to AVX2 builds (and the reverse): unless TORCHINDUCTOR_CACHE_DIR is set, the
   emulated machine gets a cache directory of its own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012
#define BIT(n) (1u << (n))

/* Leaf 7, subleaf 0: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL in EBX; VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ in ECX;
   4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, FP16, AMX-TILE, AMX-INT8 in EDX. Subleaf 1: AVX-VNNI, AVX512_BF16 in EAX. */
static const uint32_t LEAF7_EBX = BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
static const uint32_t LEAF7_ECX = BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14);
static const uint32_t LEAF7_EDX = BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25);
static const uint32_t LEAF7_1_EAX = BIT(4) | BIT(5);

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static struct sigaction program_handler = {.sa_handler = SIG_DFL};  /* what the program asked SIGSEGV to do */

static sigaction_fn real_sigaction(void) { return (sigaction_fn)dlsym(RTLD_NEXT, "sigaction"); }

int sigaction(int signal, const struct sigaction *action, struct sigaction *previous) {
    if (signal != SIGSEGV)
        return real_sigaction()(signal, action, previous);
    if (previous)
        *previous = program_handler;
    if (action)
        program_handler = *action;
    return 0;
}

sighandler_t signal(int signal, sighandler_t handler) {
    if (signal != SIGSEGV)  /* glibc's own, with its restarting semantics */
        return ((sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal"))(signal, handler);
    sighandler_t previous = program_handler.sa_handler;
    program_handler = (struct sigaction){.sa_handler = handler, .sa_flags = SA_RESTART};
    return previous;
}

static void pass_on(int signal, siginfo_t *info, void *context) {
    if (program_handler.sa_flags & SA_SIGINFO)
        program_handler.sa_sigaction(signal, info, context);
    else if (program_handler.sa_handler != SIG_DFL && program_handler.sa_handler != SIG_IGN)
        program_handler.sa_handler(signal);
    else  /* returning re-runs the faulting instruction, which now ends the process as it would have */
        real_sigaction()(signal, &(struct sigaction){.sa_handler = SIG_DFL}, NULL);
}

static long set_cpuid_allowed(int allowed) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, allowed); }

static void masked_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    __asm__ volatile("cpuid" : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3]) : "a"(leaf), "c"(subleaf));
    if (leaf == 7 && subleaf == 0) {
        out[1] &= ~LEAF7_EBX;
        out[2] &= ~LEAF7_ECX;
        out[3] &= ~LEAF7_EDX;
    } else if (leaf == 7 && subleaf == 1) {
        out[0] &= ~LEAF7_1_EAX;
    }
}

static void on_fault(int signal, siginfo_t *info, void *context) {
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *at = (const unsigned char *)regs[REG_RIP];
    /* a faulting CPUID comes as a general protection fault (SI_KERNEL); a bad address must not be read here */
    if (info->si_code != SI_KERNEL || at[0] != 0x0f || at[1] != 0xa2) {
        pass_on(signal, info, context);
        return;
    }
    uint32_t out[4];
    set_cpuid_allowed(1);
    masked_cpuid((uint32_t)regs[REG_RAX], (uint32_t)regs[REG_RCX], out);
    set_cpuid_allowed(0);
    regs[REG_RAX] = out[0];
    regs[REG_RBX] = out[1];
    regs[REG_RCX] = out[2];
    regs[REG_RDX] = out[3];
    regs[REG_RIP] += 2;
}

static void own_compile_cache(void) {
    const char *temp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/torchinductor_avx2_only_%u", temp && *temp ? temp : "/tmp", (unsigned)getuid());
    setenv("TORCHINDUCTOR_CACHE_DIR", path, 0);
}

__attribute__((constructor)) static void hide_avx512(void) {
    own_compile_cache();
    struct sigaction action = {.sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigemptyset(&action.sa_mask);
    if (real_sigaction()(SIGSEGV, &action, NULL) != 0 || set_cpuid_allowed(0) != 0) {
        perror("avx2_only: CPUID faulting is not available here");
        exit(2);
    }
}
