/*
 * libicount: a QEMU TCG plugin that counts executed guest instructions and
 * prints the count each time execution reaches a marker address.
 *
 *   qemu-system-arm ... -plugin build/libicount.so,mark=0x1234,mark=0x5678 -d plugin -D LOG
 *   qemu-system-arm ... -plugin build/libicount.so,mark=0x1234,out=FILE
 *
 * LOG (or FILE) then holds one line per marker hit, in execution order, and
 * the total when QEMU exits:
 *   icount mark 0x00001234 COUNT     COUNT: instructions executed before the marked one
 *   icount total COUNT
 * FILE holds nothing but these lines (QEMU's log may carry other -d output)
 * and is flushed at every line, so what a killed run reached is kept.
 * (host/lpn/icount.py resolves marker names with arm-none-eabi-nm and reads FILE.)
 *
 * Every instruction gets an inline add of 1 as it starts, so the count is
 * exact even when a translation block is left half way (an exception, an
 * interrupt). Marker callbacks run before the instruction's own add. A
 * conditional instruction whose condition fails counts as executed, as on the
 * core. The counter is not atomic: it is meant for single-core machines
 * (mps2-an385/an386, lm3s6965evb).
 *
 * Debian ships QEMU with plugin support but without qemu-plugin.h, so the few
 * parts of the API (version 1, QEMU 4.2 to 8.1) used here are declared below.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- From QEMU's include/qemu/qemu-plugin.h, API version 1 ---------------- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);
/* ---------------------------------------------------------------------------- */

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_MARKS 64

static uint64_t executed;            /* instructions started so far */
static uint64_t marks[MAX_MARKS];
static size_t mark_count;
static FILE *out; /* NULL: QEMU's log */

static void emit(const char *line)
{
    if (out != NULL) {
        fputs(line, out);
        fflush(out);
    } else {
        qemu_plugin_outs(line);
    }
}

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    char line[64];
    snprintf(line, sizeof line, "icount mark 0x%08" PRIx64 " %" PRIu64 "\n", *(const uint64_t *)userdata, executed);
    emit(line);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        for (size_t m = 0; m < mark_count; ++m) {
            if (marks[m] == vaddr) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, &marks[m]);
            }
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
    }
}

static void on_guest_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    char line[48];
    snprintf(line, sizeof line, "icount total %" PRIu64 "\n", executed);
    emit(line);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "out=", 4) == 0 && out == NULL) {
            out = fopen(argv[i] + 4, "w");
            if (out == NULL) {
                fprintf(stderr, "icount: cannot write %s\n", argv[i] + 4);
                return -1;
            }
            continue;
        }
        const char *value = strncmp(argv[i], "mark=", 5) == 0 ? argv[i] + 5 : NULL;
        char *end = NULL;
        unsigned long long address = value != NULL ? strtoull(value, &end, 0) : 0;
        if (value == NULL || *value == '\0' || *end != '\0' || mark_count == MAX_MARKS) {
            fprintf(stderr, "icount: bad argument %s (expected mark=ADDRESS, at most %d, or out=FILE)\n", argv[i],
                    MAX_MARKS);
            return -1;
        }
        marks[mark_count++] = address;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_guest_exit, NULL);
    return 0;
}
