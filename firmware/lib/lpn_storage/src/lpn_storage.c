/*
 * Two-slot power-loss-safe storage; the layout and the guarantee are described
 * in lpn_storage.h.
 */
#include "lpn_storage.h"

/* Bytes read per callback while checking a slot's CRC: small, because it is
 * stack on a 2 KB AVR. */
#define CHUNK 16u

struct slot {
    uint32_t sequence;
    uint32_t length;
    uint8_t valid; /* magic, length and CRC all check */
};

/* CRC-32 as zlib computes it, bit by bit: a table would cost 1 KB of RAM on AVR. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *data, uint32_t length)
{
    crc = ~crc;
    for (uint32_t i = 0; i < length; ++i) {
        crc ^= data[i];
        for (unsigned bit = 0; bit < 8u; ++bit) {
            uint32_t mask = (uint32_t)0u - (crc & 1u);
            crc = (crc >> 1) ^ (UINT32_C(0xEDB88320) & mask);
        }
    }
    return ~crc;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int config_ok(const struct lpn_storage_config *cfg)
{
    if (cfg == NULL || cfg->read == NULL || cfg->prog == NULL) {
        return 0;
    }
    uint32_t ps = cfg->prog_size;
    if (ps == 0u || ps > LPN_STORAGE_MAX_PROG_SIZE || (ps & (ps - 1u)) != 0u) {
        return 0; /* a power of two up to 16, so it divides the 16-byte header */
    }
    if (cfg->slot_size < LPN_STORAGE_HEADER_SIZE + ps || cfg->slot_size % ps != 0u) {
        return 0;
    }
    /* Both slots must be addressable with uint32_t offsets. */
    return cfg->slot_size <= UINT32_MAX / 2u;
}

long lpn_storage_capacity(const struct lpn_storage_config *cfg)
{
    if (!config_ok(cfg)) {
        return LPN_STORAGE_ERR_INVAL;
    }
    return (long)(cfg->slot_size - LPN_STORAGE_HEADER_SIZE);
}

/* "a is newer than b" in serial-number arithmetic: a is 1 .. 2^31-1 steps after b. */
static int newer(uint32_t a, uint32_t b)
{
    uint32_t steps = a - b;
    return steps != 0u && steps < UINT32_C(0x80000000);
}

/* Reads slot `index`'s header and checks its CRC by streaming the payload.
 * Returns 0 (then out->valid says whether the slot holds a state) or a
 * negative error from the read callback. */
static int inspect(const struct lpn_storage_config *cfg, uint32_t index, struct slot *out)
{
    uint8_t chunk[CHUNK];
    uint32_t base = index * cfg->slot_size;
    out->valid = 0;
    int rc = cfg->read(cfg, base, chunk, LPN_STORAGE_HEADER_SIZE);
    if (rc < 0) {
        return rc;
    }
    out->sequence = get_le32(chunk + 4);
    out->length = get_le32(chunk + 8);
    uint32_t stored_crc = get_le32(chunk + 12);
    /* The length is checked before it bounds any read: a torn header may hold anything. */
    if (get_le32(chunk) != LPN_STORAGE_MAGIC || out->length > cfg->slot_size - LPN_STORAGE_HEADER_SIZE) {
        return 0;
    }
    uint32_t crc = crc32_update(0u, chunk, 12u);
    for (uint32_t done = 0; done < out->length;) {
        uint32_t n = out->length - done < CHUNK ? out->length - done : CHUNK;
        rc = cfg->read(cfg, base + LPN_STORAGE_HEADER_SIZE + done, chunk, n);
        if (rc < 0) {
            return rc;
        }
        crc = crc32_update(crc, chunk, n);
        done += n;
    }
    out->valid = crc == stored_crc;
    return 0;
}

/* Finds the slot holding the current state: *current is 0 or 1, or -1 if
 * neither slot is valid. Returns 0 or a negative read error. */
static int find_current(const struct lpn_storage_config *cfg, struct slot slots[2], int *current)
{
    for (uint32_t i = 0; i < 2u; ++i) {
        int rc = inspect(cfg, i, &slots[i]);
        if (rc < 0) {
            return rc;
        }
    }
    if (slots[0].valid && slots[1].valid) {
        *current = newer(slots[1].sequence, slots[0].sequence) ? 1 : 0;
    } else if (slots[0].valid) {
        *current = 0;
    } else if (slots[1].valid) {
        *current = 1;
    } else {
        *current = -1;
    }
    return 0;
}

static int sync_storage(const struct lpn_storage_config *cfg)
{
    return cfg->sync != NULL ? cfg->sync(cfg) : 0;
}

int lpn_storage_save(const struct lpn_storage_config *cfg, const void *data, uint32_t length)
{
    if (!config_ok(cfg) || (data == NULL && length > 0u)) {
        return LPN_STORAGE_ERR_INVAL;
    }
    if (length > cfg->slot_size - LPN_STORAGE_HEADER_SIZE) {
        return LPN_STORAGE_ERR_NOSPACE;
    }
    struct slot slots[2];
    int current;
    int rc = find_current(cfg, slots, &current);
    if (rc < 0) {
        return rc;
    }
    /* Never touch the slot holding the current state: the other one is free. */
    uint32_t target = current == 0 ? 1u : 0u;
    uint32_t sequence = current < 0 ? 0u : slots[current].sequence + 1u; /* wraps by design */
    uint32_t base = target * cfg->slot_size;
    const uint8_t *bytes = (const uint8_t *)data;

    if (cfg->erase != NULL) {
        rc = cfg->erase(cfg, base, cfg->slot_size);
        if (rc < 0) {
            return rc;
        }
    }
    uint32_t ps = cfg->prog_size;
    uint32_t whole = length - length % ps;
    if (whole > 0u) {
        rc = cfg->prog(cfg, base + LPN_STORAGE_HEADER_SIZE, bytes, whole);
        if (rc < 0) {
            return rc;
        }
    }
    if (whole < length) {
        uint8_t tail[LPN_STORAGE_MAX_PROG_SIZE];
        for (uint32_t i = 0; i < ps; ++i) {
            tail[i] = whole + i < length ? bytes[whole + i] : 0xFFu;
        }
        rc = cfg->prog(cfg, base + LPN_STORAGE_HEADER_SIZE + whole, tail, ps);
        if (rc < 0) {
            return rc;
        }
    }
    /* The payload must be durable before the header that vouches for it. */
    rc = sync_storage(cfg);
    if (rc < 0) {
        return rc;
    }
    uint8_t header[LPN_STORAGE_HEADER_SIZE];
    put_le32(header, LPN_STORAGE_MAGIC);
    put_le32(header + 4, sequence);
    put_le32(header + 8, length);
    put_le32(header + 12, crc32_update(crc32_update(0u, header, 12u), bytes, length));
    rc = cfg->prog(cfg, base, header, LPN_STORAGE_HEADER_SIZE);
    if (rc < 0) {
        return rc;
    }
    return sync_storage(cfg);
}

int lpn_storage_load(const struct lpn_storage_config *cfg, void *buffer, uint32_t capacity, uint32_t *length)
{
    if (!config_ok(cfg) || length == NULL || (buffer == NULL && capacity > 0u)) {
        return LPN_STORAGE_ERR_INVAL;
    }
    struct slot slots[2];
    int current;
    int rc = find_current(cfg, slots, &current);
    if (rc < 0) {
        return rc;
    }
    if (current < 0) {
        return LPN_STORAGE_ERR_NOENT;
    }
    const struct slot *s = &slots[current];
    *length = s->length;
    if (s->length > capacity) {
        return LPN_STORAGE_ERR_NOSPACE;
    }
    uint32_t base = (uint32_t)current * cfg->slot_size;
    if (s->length > 0u) {
        rc = cfg->read(cfg, base + LPN_STORAGE_HEADER_SIZE, buffer, s->length);
        if (rc < 0) {
            return rc;
        }
    }
    /* Check what was copied, not only what was checked: a medium that reads
     * back differently now must not hand out a mix. */
    uint8_t header[LPN_STORAGE_HEADER_SIZE];
    rc = cfg->read(cfg, base, header, LPN_STORAGE_HEADER_SIZE);
    if (rc < 0) {
        return rc;
    }
    uint32_t crc = crc32_update(crc32_update(0u, header, 12u), (const uint8_t *)buffer, s->length);
    if (get_le32(header + 4) != s->sequence || get_le32(header + 8) != s->length || crc != get_le32(header + 12)) {
        return LPN_STORAGE_ERR_IO;
    }
    return LPN_STORAGE_OK;
}
