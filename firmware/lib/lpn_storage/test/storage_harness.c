/*
 * Desktop harness of lpn_storage: a RAM-backed storage that can cut the power
 * at write N, and a file that holds the storage between runs (as the host file
 * behind an emulated board would). Driven by tests/test_storage.py; built with
 * the sanitizers, so any out-of-range access by the library aborts the run.
 *
 *   storage_harness IMAGE SLOT_SIZE PROG_SIZE ERASE COMMAND [ARGS...]
 *
 * IMAGE is the storage (2 * SLOT_SIZE bytes, created erased if missing). ERASE
 * is 1 for a flash-like medium (prog can only clear bits, so every range must be
 * erased first) and 0 for an EEPROM-like one (bytes overwrite in place).
 *
 *   load              prints "ok LEN HEX" or "error CODE"
 *   save SEED LEN     stores payload(SEED, LEN); prints "ok" or "error CODE"
 *   cuts SEED LEN...  for each LEN in turn: cuts the power at every write of
 *                     saving a new payload of LEN bytes and, within the cut
 *                     write, after every byte (0 .. size-1 bytes land); after each cut,
 *                     loads (must give the complete old or the complete new
 *                     payload) and checks a later save still works; then
 *                     saves it for good. Prints one summary line per save and
 *                     exits 1 if any load gave anything else.
 *   naive-cuts SEED LEN...  the same check of a naive writer that updates one
 *                     place in situ: proves the check catches a mix.
 *   checks            argument and size checks of the API; exits 1 on a failure
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpn_storage.h"

#define NO_FAULT (-1L)

#define MAX_WRITES 16

struct ram_device {
    uint8_t *image;
    uint32_t size;
    int flash;          /* prog ANDs into erased bytes, as NOR flash does */
    long writes;        /* prog and erase calls since the last reset */
    long fault_at;      /* the write during which the power goes; NO_FAULT for none */
    uint32_t tear;      /* bytes of the cut write that still reach the medium */
    uint32_t sizes[MAX_WRITES]; /* size of each write since the last reset */
    int dead;           /* the power is gone: nothing more is written */
};

static void die(const char *what)
{
    fprintf(stderr, "storage_harness: %s\n", what);
    exit(2);
}

static struct ram_device *device_of(const struct lpn_storage_config *cfg)
{
    return (struct ram_device *)cfg->context;
}

static void check_range(const struct ram_device *dev, uint32_t offset, uint32_t size)
{
    if (offset > dev->size || size > dev->size - offset) {
        die("access outside the storage");
    }
}

static int ram_read(const struct lpn_storage_config *cfg, uint32_t offset, void *buffer, uint32_t size)
{
    struct ram_device *dev = device_of(cfg);
    check_range(dev, offset, size);
    if (dev->dead) {
        return LPN_STORAGE_ERR_IO;
    }
    memcpy(buffer, dev->image + offset, size);
    return 0;
}

/* Counts one write; returns how many of its `size` bytes reach the medium. */
static uint32_t begin_write(struct ram_device *dev, uint32_t size)
{
    long index = dev->writes++;
    if (index < MAX_WRITES) {
        dev->sizes[index] = size;
    }
    if (dev->dead) {
        return 0;
    }
    if (index == dev->fault_at) {
        dev->dead = 1;
        return dev->tear < size ? dev->tear : size;
    }
    return size;
}

static int ram_prog(const struct lpn_storage_config *cfg, uint32_t offset, const void *buffer, uint32_t size)
{
    struct ram_device *dev = device_of(cfg);
    check_range(dev, offset, size);
    if (offset % cfg->prog_size != 0u || size % cfg->prog_size != 0u) {
        die("prog not aligned to prog_size");
    }
    uint32_t n = begin_write(dev, size);
    const uint8_t *bytes = (const uint8_t *)buffer;
    for (uint32_t i = 0; i < n; ++i) {
        dev->image[offset + i] = dev->flash ? (uint8_t)(dev->image[offset + i] & bytes[i]) : bytes[i];
    }
    return n == size && !dev->dead ? 0 : LPN_STORAGE_ERR_IO;
}

static int ram_erase(const struct lpn_storage_config *cfg, uint32_t offset, uint32_t size)
{
    struct ram_device *dev = device_of(cfg);
    check_range(dev, offset, size);
    if (offset % cfg->slot_size != 0u || size != cfg->slot_size) {
        die("erase of something other than one whole slot");
    }
    uint32_t n = begin_write(dev, size);
    memset(dev->image + offset, 0xFF, n);
    return n == size && !dev->dead ? 0 : LPN_STORAGE_ERR_IO;
}

static int ram_sync(const struct lpn_storage_config *cfg)
{
    return device_of(cfg)->dead ? LPN_STORAGE_ERR_IO : 0;
}

static void reset_power(struct ram_device *dev)
{
    dev->writes = 0;
    dev->fault_at = NO_FAULT;
    dev->tear = 0;
    dev->dead = 0;
}

/* Deterministic payload bytes, different for every (seed, length). */
static void payload(uint8_t *out, uint32_t seed, uint32_t length)
{
    uint32_t x = seed * UINT32_C(2654435761) ^ (length + UINT32_C(0x9E3779B9));
    for (uint32_t i = 0; i < length; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = (uint8_t)(x >> 24);
    }
}

/* ---- The state a reboot would find ------------------------------------ */

struct loaded {
    int status;         /* lpn_storage_load's result */
    uint32_t length;
    uint8_t *bytes;     /* capacity bytes */
};

static int same_state(const struct loaded *a, const struct loaded *b)
{
    if (a->status != b->status) {
        return 0;
    }
    if (a->status != 0) {
        return 1;
    }
    return a->length == b->length && memcmp(a->bytes, b->bytes, a->length) == 0;
}

/* ---- The two writers under test ---------------------------------------- */

typedef int (*save_fn)(const struct lpn_storage_config *cfg, const void *data, uint32_t length);
typedef void (*load_fn)(const struct lpn_storage_config *cfg, struct loaded *out, uint32_t capacity);

static void library_load(const struct lpn_storage_config *cfg, struct loaded *out, uint32_t capacity)
{
    out->status = lpn_storage_load(cfg, out->bytes, capacity, &out->length);
}

/* What the library replaces: length and payload written in place, no CRC. */
static int naive_save(const struct lpn_storage_config *cfg, const void *data, uint32_t length)
{
    uint8_t header[16] = {0};
    memcpy(header, &length, sizeof length);
    if (cfg->erase != NULL) {
        int rc = cfg->erase(cfg, 0, cfg->slot_size);
        if (rc < 0) {
            return rc;
        }
    }
    int rc = cfg->prog(cfg, 0, header, sizeof header);
    if (rc < 0 || length == 0u) {
        return rc;
    }
    uint32_t padded = (length + cfg->prog_size - 1u) / cfg->prog_size * cfg->prog_size;
    uint8_t *buffer = malloc(padded);
    if (buffer == NULL) {
        die("out of memory");
    }
    memset(buffer, 0xFF, padded);
    memcpy(buffer, data, length);
    rc = cfg->prog(cfg, 16, buffer, padded);
    free(buffer);
    return rc;
}

static void naive_load(const struct lpn_storage_config *cfg, struct loaded *out, uint32_t capacity)
{
    uint8_t header[16];
    out->status = cfg->read(cfg, 0, header, sizeof header);
    memcpy(&out->length, header, sizeof out->length);
    if (out->status == 0 && out->length > capacity) {
        out->status = LPN_STORAGE_ERR_NOENT;
    }
    if (out->status == 0 && out->length > 0u) {
        out->status = cfg->read(cfg, 16, out->bytes, out->length);
    }
}

/* ---- Exhaustive cuts ----------------------------------------------------- */

struct tally {
    long cases, old_state, new_state, mixed, recovered;
};

/* Tries every cut of one save over the current image, then commits the save.
 * Returns the number of cuts after which a load gave neither state. */
static long cut_every_write(struct lpn_storage_config *cfg, save_fn save, load_fn load, uint32_t seed,
                            uint32_t index, uint32_t length)
{
    struct tally tally = {0, 0, 0, 0, 0};
    struct tally *t = &tally;
    struct ram_device *dev = device_of(cfg);
    uint32_t capacity = cfg->slot_size;
    uint8_t *before_image = malloc(dev->size);
    uint8_t *data = malloc(length + 1u);
    uint8_t *recovery = malloc(length + 1u);
    struct loaded old = {0, 0, malloc(capacity)}, fresh = {0, 0, malloc(capacity)},
                  now = {0, 0, malloc(capacity)};
    if (!before_image || !data || !recovery || !old.bytes || !fresh.bytes || !now.bytes) {
        die("out of memory");
    }
    memcpy(before_image, dev->image, dev->size);
    payload(data, seed + index, length);
    payload(recovery, seed + index + 7777u, length);

    reset_power(dev);
    load(cfg, &old, capacity);
    /* A clean save: counts its writes and gives the state it must produce. */
    if (save(cfg, data, length) != 0) {
        die("a save without a cut failed");
    }
    long writes = dev->writes;
    if (writes > MAX_WRITES) {
        die("more writes per save than the harness records");
    }
    uint32_t sizes[MAX_WRITES];
    memcpy(sizes, dev->sizes, sizeof sizes);
    fresh.status = 0;
    fresh.length = length;
    memcpy(fresh.bytes, data, length);

    for (long cut = 0; cut <= writes; ++cut) {
        /* The cut write lands in part: every prefix, from none of its bytes to
         * all but the last (a byte-wide medium such as EEPROM can stop anywhere).
         * cut == writes is the save that completes. */
        uint32_t tears = cut < writes ? sizes[cut] : 1u;
        for (uint32_t tear = 0; tear < tears; ++tear) {
            memcpy(dev->image, before_image, dev->size);
            reset_power(dev);
            if (cut < writes) {
                dev->fault_at = cut;
                dev->tear = tear;
            }
            t->cases++;
            (void)save(cfg, data, length);
            reset_power(dev);
            load(cfg, &now, capacity);
            if (same_state(&now, &fresh)) {
                t->new_state++;
            } else if (same_state(&now, &old)) {
                t->old_state++;
            } else {
                t->mixed++;
                fprintf(stderr, "save %u (%u bytes): cut at write %ld of %ld (%u of %u bytes written) loaded a mix\n",
                        (unsigned)index, (unsigned)length, cut, writes, (unsigned)tear,
                        (unsigned)(cut < writes ? sizes[cut] : 0u));
            }
            /* The device is not bricked: a later save and load work. */
            reset_power(dev);
            if (save(cfg, recovery, length) == 0) {
                load(cfg, &now, capacity);
                if (now.status == 0 && now.length == length && memcmp(now.bytes, recovery, length) == 0) {
                    t->recovered++;
                }
            }
        }
    }
    /* Commit the save for the next round. */
    memcpy(dev->image, before_image, dev->size);
    reset_power(dev);
    if (save(cfg, data, length) != 0) {
        die("the committing save failed");
    }
    unsigned long bytes = 0;
    for (long i = 0; i < writes; ++i) {
        bytes += sizes[i];
    }
    printf("cuts index=%u len=%u writes=%ld bytes=%lu cases=%ld old=%ld new=%ld mixed=%ld recovered=%ld\n",
           (unsigned)index, (unsigned)length, writes, bytes, t->cases, t->old_state, t->new_state, t->mixed,
           t->recovered);
    free(before_image);
    free(data);
    free(recovery);
    free(old.bytes);
    free(fresh.bytes);
    free(now.bytes);
    return t->mixed;
}

/* ---- Image file and commands ------------------------------------------- */

static void read_image(const char *path, struct ram_device *dev)
{
    memset(dev->image, 0xFF, dev->size); /* a new medium is erased */
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return;
    }
    size_t n = fread(dev->image, 1, dev->size, f);
    fclose(f);
    if (n != dev->size) {
        die("image file has the wrong size");
    }
}

static void write_image(const char *path, const struct ram_device *dev)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(dev->image, 1, dev->size, f) != dev->size || fclose(f) != 0) {
        die("cannot write the image file");
    }
}

static uint32_t parse_u32(const char *text)
{
    char *end;
    unsigned long v = strtoul(text, &end, 0);
    if (*text == '\0' || *end != '\0' || v > UINT32_MAX) {
        die("bad number");
    }
    return (uint32_t)v;
}

static int failures;

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "check failed: %s\n", what);
        failures++;
    }
}

/* The API's refusals; each leaves the stored state as it was. */
static void run_checks(struct lpn_storage_config *cfg)
{
    struct ram_device *dev = device_of(cfg);
    long capacity = lpn_storage_capacity(cfg);
    expect(capacity == (long)cfg->slot_size - 16, "capacity is slot_size - 16");
    uint8_t *data = malloc((size_t)capacity + 2u), *back = malloc((size_t)capacity + 2u);
    if (data == NULL || back == NULL) {
        die("out of memory");
    }
    uint32_t length = 0;
    expect(lpn_storage_load(cfg, back, (uint32_t)capacity, &length) == LPN_STORAGE_ERR_NOENT,
           "an erased medium holds no state");
    payload(data, 1u, (uint32_t)capacity);
    expect(lpn_storage_save(cfg, data, (uint32_t)capacity) == 0, "a full slot saves");
    expect(lpn_storage_load(cfg, back, (uint32_t)capacity, &length) == 0 && length == (uint32_t)capacity &&
               memcmp(back, data, length) == 0, "a full slot loads back");
    uint8_t *snapshot = malloc(dev->size);
    if (snapshot == NULL) {
        die("out of memory");
    }
    memcpy(snapshot, dev->image, dev->size);
    expect(lpn_storage_save(cfg, data, (uint32_t)capacity + 1u) == LPN_STORAGE_ERR_NOSPACE,
           "a payload one byte over capacity is refused");
    expect(memcmp(snapshot, dev->image, dev->size) == 0, "a refused save writes nothing");
    memset(back, 0xA5, (size_t)capacity);
    expect(lpn_storage_load(cfg, back, (uint32_t)capacity - 1u, &length) == LPN_STORAGE_ERR_NOSPACE &&
               length == (uint32_t)capacity && back[0] == 0xA5, "a short buffer gets the length, no bytes");
    expect(lpn_storage_save(cfg, NULL, 1u) == LPN_STORAGE_ERR_INVAL, "NULL data is refused");
    expect(lpn_storage_load(cfg, back, 4u, NULL) == LPN_STORAGE_ERR_INVAL, "NULL length is refused");
    expect(lpn_storage_save(cfg, NULL, 0u) == 0, "an empty state saves");
    expect(lpn_storage_load(cfg, NULL, 0u, &length) == 0 && length == 0u, "an empty state loads");

    struct lpn_storage_config bad = *cfg;
    bad.prog_size = 3u;
    expect(lpn_storage_save(&bad, data, 1u) == LPN_STORAGE_ERR_INVAL, "prog_size 3 is refused");
    bad = *cfg;
    bad.prog_size = 32u;
    expect(lpn_storage_capacity(&bad) == LPN_STORAGE_ERR_INVAL, "prog_size 32 is refused");
    bad = *cfg;
    bad.slot_size = 16u;
    expect(lpn_storage_capacity(&bad) == LPN_STORAGE_ERR_INVAL, "a slot without payload room is refused");
    bad = *cfg;
    bad.read = NULL;
    expect(lpn_storage_load(&bad, back, 4u, &length) == LPN_STORAGE_ERR_INVAL, "a missing read is refused");
    expect(lpn_storage_capacity(NULL) == LPN_STORAGE_ERR_INVAL, "a NULL config is refused");

    /* A read error reaches the caller unchanged, and a save then writes nothing. */
    memcpy(dev->image, snapshot, dev->size);
    dev->dead = 1;
    expect(lpn_storage_load(cfg, back, (uint32_t)capacity, &length) == LPN_STORAGE_ERR_IO,
           "a failing read is reported");
    dev->dead = 0;
    memcpy(dev->image, snapshot, dev->size);
    free(snapshot);
    free(data);
    free(back);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s IMAGE SLOT_SIZE PROG_SIZE ERASE COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    struct ram_device dev;
    memset(&dev, 0, sizeof dev);
    struct lpn_storage_config cfg = {
        .context = &dev,
        .read = ram_read,
        .prog = ram_prog,
        .erase = parse_u32(argv[4]) ? ram_erase : NULL,
        .sync = ram_sync,
        .slot_size = parse_u32(argv[2]),
        .prog_size = parse_u32(argv[3]),
    };
    if (lpn_storage_capacity(&cfg) < 0) {
        die("the library refuses this configuration");
    }
    dev.flash = cfg.erase != NULL;
    dev.size = 2u * cfg.slot_size;
    dev.image = malloc(dev.size);
    if (dev.image == NULL) {
        die("out of memory");
    }
    read_image(path, &dev);
    reset_power(&dev);

    const char *command = argv[5];
    int status = 0;
    if (strcmp(command, "load") == 0) {
        struct loaded got = {0, 0, malloc(cfg.slot_size)};
        if (got.bytes == NULL) {
            die("out of memory");
        }
        library_load(&cfg, &got, cfg.slot_size);
        if (got.status == 0) {
            printf("ok %u ", (unsigned)got.length);
            for (uint32_t i = 0; i < got.length; ++i) {
                printf("%02x", got.bytes[i]);
            }
            printf("\n");
        } else {
            printf("error %d\n", got.status);
        }
        free(got.bytes);
    } else if (strcmp(command, "save") == 0 && argc == 8) {
        uint32_t length = parse_u32(argv[7]);
        uint8_t *data = malloc(length + 1u);
        if (data == NULL) {
            die("out of memory");
        }
        payload(data, parse_u32(argv[6]), length);
        int rc = lpn_storage_save(&cfg, data, length);
        free(data);
        if (rc == 0) {
            printf("ok\n");
        } else {
            printf("error %d\n", rc);
        }
        write_image(path, &dev);
    } else if ((strcmp(command, "cuts") == 0 || strcmp(command, "naive-cuts") == 0) && argc >= 8) {
        int naive = command[0] == 'n';
        uint32_t seed = parse_u32(argv[6]);
        long mixed = 0;
        for (int i = 7; i < argc; ++i) {
            mixed += cut_every_write(&cfg, naive ? naive_save : lpn_storage_save,
                                     naive ? naive_load : library_load, seed, (uint32_t)(i - 7),
                                     parse_u32(argv[i]));
        }
        write_image(path, &dev);
        status = mixed == 0 ? 0 : 1;
    } else if (strcmp(command, "checks") == 0) {
        run_checks(&cfg);
        printf("checks failures=%d\n", failures);
        status = failures == 0 ? 0 : 1;
    } else {
        die("unknown command or wrong arguments");
    }
    free(dev.image);
    return status;
}
