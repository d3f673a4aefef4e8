/*
 * Test firmware of lpn_storage on a host file through semihosting
 * (lpn_storage_semihost), for QEMU mps2-an385/an386. Driven by
 * tests/test_storage.py through the semihosting command line:
 *
 *   -semihosting-config enable=on,target=native,arg=fw,arg=SAVES,arg=CUT
 *
 * At boot it loads the state from "lpn_storage.bin" in QEMU's working
 * directory and says what it found: "boot empty", "boot loaded K", or
 * "boot mixed" for a payload that is not exactly what save K wrote. Then it
 * saves K+1, K+2, ... (SAVES saves, each payload self-describing and of a
 * different length), printing "saved K" after each, and exits 0. With CUT > 0
 * the run ends abruptly (exit code 3) just before the CUT-th storage write,
 * as a power cut would.
 */
#include <stdint.h>
#include <string.h>

#include "../mps2_startup.h"
#include "lpn_storage.h"
#include "lpn_storage_semihost.h"

#define SLOT_SIZE 512u
#define CAPACITY (SLOT_SIZE - 16u)

static uint8_t payload[CAPACITY];
static struct lpn_storage_config file_cfg;
static uint32_t writes, cut_at;

/* Save k's payload: k, then bytes that depend on k and their position. */
static uint32_t length_of(uint32_t k)
{
    return 4u + (k * 37u) % (CAPACITY - 3u);
}

static uint8_t byte_of(uint32_t k, uint32_t i)
{
    return (uint8_t)(k * 31u + i * 7u + (i >> 3));
}

static void make_payload(uint32_t k)
{
    payload[0] = (uint8_t)k;
    payload[1] = (uint8_t)(k >> 8);
    payload[2] = (uint8_t)(k >> 16);
    payload[3] = (uint8_t)(k >> 24);
    for (uint32_t i = 4; i < length_of(k); ++i) {
        payload[i] = byte_of(k, i);
    }
}

static int is_payload_of(uint32_t k, uint32_t length)
{
    if (length != length_of(k)) {
        return 0;
    }
    for (uint32_t i = 4; i < length; ++i) {
        if (payload[i] != byte_of(k, i)) {
            return 0;
        }
    }
    return 1;
}

/* The file storage, with the power cut before write number cut_at. */
static int cutting_prog(const struct lpn_storage_config *cfg, uint32_t offset, const void *buffer, uint32_t size)
{
    (void)cfg;
    if (++writes == cut_at) {
        semihost_exit(3u);
    }
    return file_cfg.prog(&file_cfg, offset, buffer, size);
}

static void print_number(const char *prefix, uint32_t value)
{
    char text[40];
    char digits[11];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    size_t length = strlen(prefix);
    memcpy(text, prefix, length);
    while (n > 0) {
        text[length++] = digits[--n];
    }
    text[length++] = '\n';
    text[length] = '\0';
    semihost_print(text);
}

/* The numbers after the program name on the semihosting command line. */
static void read_arguments(uint32_t *saves, uint32_t *cut)
{
    static char line[80];
    uint32_t block[2] = {(uint32_t)(uintptr_t)line, sizeof line};
    *saves = 10u;
    *cut = 0u;
    if (semihost_call(0x15u /* SYS_GET_CMDLINE */, block) != 0) {
        return;
    }
    uint32_t values[2] = {*saves, *cut};
    int index = -1; /* the first word is the program name */
    for (const char *p = line; *p != '\0' && index < 2; ++p) {
        if (*p == ' ') {
            ++index;
            if (index < 2) {
                values[index] = 0u;
            }
        } else if (index >= 0 && index < 2 && *p >= '0' && *p <= '9') {
            values[index] = values[index] * 10u + (uint32_t)(*p - '0');
        }
    }
    *saves = values[0];
    *cut = values[1];
}

int main(void)
{
    uint32_t saves;
    read_arguments(&saves, &cut_at);
    struct lpn_storage_semihost file;
    if (lpn_storage_semihost_open(&file_cfg, &file, "lpn_storage.bin", SLOT_SIZE) != 0) {
        semihost_print("boot no file\n");
        return 2;
    }
    struct lpn_storage_config cfg = file_cfg;
    cfg.prog = cutting_prog;

    uint32_t length = 0, k = 0;
    int rc = lpn_storage_load(&cfg, payload, sizeof payload, &length);
    if (rc == LPN_STORAGE_ERR_NOENT) {
        semihost_print("boot empty\n");
    } else if (rc != 0 || length < 4u) {
        print_number("boot error ", (uint32_t)-rc);
        return 2;
    } else {
        k = (uint32_t)payload[0] | ((uint32_t)payload[1] << 8) | ((uint32_t)payload[2] << 16) |
            ((uint32_t)payload[3] << 24);
        if (!is_payload_of(k, length)) {
            semihost_print("boot mixed\n");
            return 2;
        }
        print_number("boot loaded ", k);
    }
    for (uint32_t n = 0; n < saves; ++n) {
        ++k;
        make_payload(k);
        if (lpn_storage_save(&cfg, payload, length_of(k)) != 0) {
            print_number("save failed ", k);
            return 2;
        }
        print_number("saved ", k);
    }
    lpn_storage_semihost_close(&file);
    return 0;
}
