/*
 * The dispatcher of the LPN serial protocol: one received byte in, a reply out
 * for every complete frame. See lpn_protocol.h for the contract and
 * docs/protocol.md for the command table.
 */
#include "lpn_protocol.h"

#include <string.h>

#define REPLY_ROOM (LPN_PROTO_REPLY_HEADER + LPN_PROTO_CRC_SIZE)
#define REQUEST_ROOM (LPN_PROTO_REQUEST_HEADER + LPN_PROTO_CRC_SIZE)
#define TEXT_FIELD 16u

/* Little-endian access, independent of the CPU's byte order and alignment. */
static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Two's complement without the implementation-defined narrowing conversion. */
static int16_t get_i16(const uint8_t *p)
{
    uint16_t u = get_u16(p);
    return u >= 0x8000u ? (int16_t)((int32_t)u - 65536L) : (int16_t)u;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static void put_i16(uint8_t *p, int16_t v) { put_u16(p, (uint16_t)v); }
static void put_i32(uint8_t *p, int32_t v) { put_u32(p, (uint32_t)v); }

static void read_vector(int16_t *to, const uint8_t *from, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) {
        to[i] = get_i16(from + 2u * i);
    }
}

static void put_text(uint8_t *to, const char *text)
{
    size_t i;
    memset(to, 0, TEXT_FIELD);
    for (i = 0; text != NULL && i < TEXT_FIELD && text[i] != '\0'; i++) {
        to[i] = (uint8_t)text[i];
    }
}

/* The learner's codes reach the host unchanged; anything else it returns would
 * collide with the protocol's own codes, so it is reported as one code. */
static int learner_status(int result)
{
    if (result >= 0) {
        return LPN_PROTO_OK;
    }
    if (result >= LPN_PROTO_LEARNER_CODE_MIN) {
        return result;
    }
    return LPN_PROTO_ERR_LEARNER_FAILED;
}

int lpn_protocol_init(struct lpn_protocol *p, const struct lpn_protocol_config *config)
{
    struct lpn_learner_info info;
    size_t buffer_size;
    size_t max_frame;
    int result;

    if (p == NULL || config == NULL || config->ops == NULL || config->ops->info == NULL ||
        config->write == NULL || config->rx_buffer == NULL || config->tx_buffer == NULL ||
        config->vectors == NULL) {
        return LPN_PROTO_ERR_BAD_ARGUMENT;
    }
    max_frame = config->max_frame;
    if (max_frame < LPN_PROTOCOL_MIN_FRAME || max_frame > LPN_PROTO_MAX_FRAME) {
        return LPN_PROTO_ERR_BAD_ARGUMENT;
    }
    buffer_size = LPN_PROTOCOL_BUFFER_SIZE(max_frame);
    if (config->rx_size < buffer_size || config->tx_size < buffer_size) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    memset(&info, 0, sizeof info);
    result = config->ops->info(config->ops->context, &info);
    if (result < 0) {
        return result;
    }
    if (info.tasks == 0u || info.layers == 0u || info.layers > LPN_PROTO_MAX_LAYERS || info.inputs == 0u ||
        info.outputs == 0u) {
        return LPN_PROTO_ERR_BAD_ARGUMENT;
    }
    /* Checked first so the size macros below cannot wrap a 16-bit size_t. */
    if ((uint32_t)info.inputs + info.outputs > LPN_PROTO_MAX_FRAME ||
        config->vectors_length < (size_t)info.inputs + info.outputs) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    if (REQUEST_ROOM + LPN_PROTO_LEARN_REQ_SIZE(info.inputs, info.outputs) > max_frame ||
        REPLY_ROOM + LPN_PROTO_PREDICT_REP_SIZE(info.outputs) > max_frame ||
        REPLY_ROOM + LPN_PROTO_STATS_REP_SIZE(info.layers) > max_frame) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    if (config->state_buffer != NULL && config->state_buffer_size < info.state_bytes) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }

    memset(p, 0, sizeof *p);
    p->cfg = *config;
    p->inputs = info.inputs;
    p->outputs = info.outputs;
    p->tasks = info.tasks;
    p->layers = info.layers;
    p->state_bytes = info.state_bytes;
    /* A raw reply sits this far into tx so it can be COBS-encoded in place. */
    p->tx_offset = LPN_COBS_MAX_ENCODED(max_frame) - max_frame;
    lpn_frame_assembler_init(&p->rx, config->rx_buffer, config->rx_size);
    {
        static const uint8_t delimiter = 0u;
        return config->write(config->write_context, &delimiter, 1u);
    }
}

/* Error replies to frames that were never run are built apart from tx, which
 * keeps the cached reply: a retry of the last request after a garbled frame
 * must still get that reply instead of running the request twice. */
static int send_error(struct lpn_protocol *p, uint8_t cmd, uint8_t seq, int status)
{
    uint8_t raw[REPLY_ROOM];
    uint8_t wire[LPN_COBS_MAX_ENCODED(REPLY_ROOM) + 1u];
    size_t length;

    raw[0] = (uint8_t)(cmd | LPN_PROTO_REPLY_FLAG);
    raw[1] = seq;
    raw[2] = (uint8_t)status;
    put_u32(raw + LPN_PROTO_REPLY_HEADER, lpn_crc32_update(0u, raw, LPN_PROTO_REPLY_HEADER));
    length = lpn_cobs_encode(raw, sizeof raw, wire, sizeof wire - 1u);
    wire[length] = 0u;
    return p->cfg.write(p->cfg.write_context, wire, length + 1u);
}

/* The command and sequence bytes of a frame that cannot be decoded completely,
 * so that even its error reply can be matched to the request by the host. */
static int send_error_from_prefix(struct lpn_protocol *p, int status)
{
    size_t decoded = 0;
    uint8_t *frame = p->rx.buffer;

    (void)lpn_cobs_decode(frame, p->rx.length, frame, p->rx.length, &decoded);
    return send_error(p, decoded > 0u ? frame[0] : 0u, decoded > 1u ? frame[1] : 0u, status);
}

static int cmd_state_get(struct lpn_protocol *p, const uint8_t *in, size_t in_length, uint8_t *out,
                         size_t *out_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;
    uint32_t offset;
    uint32_t count;
    uint32_t room = (uint32_t)(p->cfg.max_frame - REPLY_ROOM - LPN_PROTO_GET_STATE_REP_MIN_SIZE);

    if (in_length != LPN_PROTO_GET_STATE_REQ_SIZE) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    if (p->cfg.state_buffer == NULL || ops->export_state == NULL) {
        return LPN_PROTO_ERR_UNSUPPORTED;
    }
    offset = get_u32(in + LPN_PROTO_GET_STATE_REQ_OFFSET_AT);
    count = get_u16(in + LPN_PROTO_GET_STATE_REQ_LENGTH_AT);
    if (offset == 0u) {
        /* A new snapshot, consistent as of now; it replaces any upload. */
        int result = ops->export_state(ops->context, p->cfg.state_buffer, p->state_bytes);
        if (result < 0) {
            p->transfer = LPN_TRANSFER_NONE;
            return learner_status(result);
        }
        p->transfer = LPN_TRANSFER_SNAPSHOT;
        p->transfer_total = p->state_bytes;
        p->transfer_crc = lpn_crc32_update(0u, p->cfg.state_buffer, p->state_bytes);
    } else if (p->transfer != LPN_TRANSFER_SNAPSHOT) {
        return LPN_PROTO_ERR_OUT_OF_ORDER;
    }
    if (offset > p->transfer_total) {
        return LPN_PROTO_ERR_BAD_ARGUMENT;
    }
    if (count > p->transfer_total - offset) {
        count = p->transfer_total - offset;
    }
    if (count > room) {
        count = room;
    }
    put_u32(out + LPN_PROTO_GET_STATE_REP_TOTAL_AT, p->transfer_total);
    put_u32(out + LPN_PROTO_GET_STATE_REP_CRC_AT, p->transfer_crc);
    memcpy(out + LPN_PROTO_GET_STATE_REP_DATA_AT, p->cfg.state_buffer + offset, (size_t)count);
    *out_length = LPN_PROTO_GET_STATE_REP_MIN_SIZE + (size_t)count;
    return LPN_PROTO_OK;
}

static int cmd_state_put(struct lpn_protocol *p, uint8_t cmd, const uint8_t *in, size_t in_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;

    if (p->cfg.state_buffer == NULL || ops->import_state == NULL) {
        return LPN_PROTO_ERR_UNSUPPORTED;
    }
    if (cmd == LPN_PROTO_CMD_PUT_STATE_BEGIN) {
        if (in_length != LPN_PROTO_PUT_STATE_BEGIN_REQ_SIZE) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        if (get_u32(in + LPN_PROTO_PUT_STATE_BEGIN_REQ_TOTAL_AT) != p->state_bytes) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        p->transfer = LPN_TRANSFER_UPLOAD;
        p->transfer_total = p->state_bytes;
        p->transfer_crc = get_u32(in + LPN_PROTO_PUT_STATE_BEGIN_REQ_CRC_AT);
        p->transfer_received = 0u;
        return LPN_PROTO_OK;
    }
    if (cmd == LPN_PROTO_CMD_PUT_STATE_CHUNK) {
        uint32_t offset;
        size_t length;

        if (in_length <= LPN_PROTO_PUT_STATE_CHUNK_REQ_MIN_SIZE) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        if (p->transfer != LPN_TRANSFER_UPLOAD) {
            return LPN_PROTO_ERR_OUT_OF_ORDER;
        }
        offset = get_u32(in + LPN_PROTO_PUT_STATE_CHUNK_REQ_OFFSET_AT);
        if (offset != p->transfer_received) {
            return LPN_PROTO_ERR_OUT_OF_ORDER;
        }
        length = in_length - LPN_PROTO_PUT_STATE_CHUNK_REQ_MIN_SIZE;
        if (length > p->transfer_total - p->transfer_received) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        memcpy(p->cfg.state_buffer + offset, in + LPN_PROTO_PUT_STATE_CHUNK_REQ_DATA_AT, length);
        p->transfer_received += (uint32_t)length;
        return LPN_PROTO_OK;
    }
    /* commit */
    if (in_length != LPN_PROTO_PUT_STATE_COMMIT_REQ_SIZE) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    if (p->transfer != LPN_TRANSFER_UPLOAD || p->transfer_received != p->transfer_total) {
        return LPN_PROTO_ERR_OUT_OF_ORDER;
    }
    if (lpn_crc32_update(0u, p->cfg.state_buffer, p->transfer_total) != p->transfer_crc) {
        return LPN_PROTO_ERR_STATE_CRC;
    }
    {
        int result = ops->import_state(ops->context, p->cfg.state_buffer, p->transfer_total);
        if (result < 0) {
            return learner_status(result);
        }
    }
    p->transfer = LPN_TRANSFER_NONE;
    return LPN_PROTO_OK;
}

static int cmd_info(struct lpn_protocol *p, uint8_t *out, size_t *out_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;
    struct lpn_learner_info info;
    int result;

    memset(&info, 0, sizeof info);
    result = ops->info(ops->context, &info);
    if (result < 0) {
        return learner_status(result);
    }
    /* The sizes are the ones fixed at init, which every check here uses. */
    put_u16(out + LPN_PROTO_INFO_REP_PROTOCOL_VERSION_AT, LPN_PROTO_VERSION);
    put_text(out + LPN_PROTO_INFO_REP_FIRMWARE_VERSION_AT, info.firmware_version);
    put_text(out + LPN_PROTO_INFO_REP_BOARD_AT, info.board);
    memcpy(out + LPN_PROTO_INFO_REP_MODEL_HASH_AT, info.model_hash, sizeof info.model_hash);
    put_u16(out + LPN_PROTO_INFO_REP_INPUTS_AT, p->inputs);
    put_u16(out + LPN_PROTO_INFO_REP_OUTPUTS_AT, p->outputs);
    out[LPN_PROTO_INFO_REP_TASKS_AT] = p->tasks;
    out[LPN_PROTO_INFO_REP_LAYERS_AT] = p->layers;
    put_u32(out + LPN_PROTO_INFO_REP_STATE_BYTES_AT, p->state_bytes);
    put_u32(out + LPN_PROTO_INFO_REP_SYNAPSES_AT, info.synapses);
    put_u32(out + LPN_PROTO_INFO_REP_FREE_RAM_AT, info.free_ram);
    put_u16(out + LPN_PROTO_INFO_REP_MAX_FRAME_AT, p->cfg.max_frame);
    *out_length = LPN_PROTO_INFO_REP_SIZE;
    return LPN_PROTO_OK;
}

static int cmd_stats(struct lpn_protocol *p, uint8_t *out, size_t *out_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;
    struct lpn_learner_stats stats;
    uint8_t i;
    int result;

    memset(&stats, 0, sizeof stats);
    result = ops->stats(ops->context, &stats);
    if (result < 0) {
        return learner_status(result);
    }
    put_u32(out + LPN_PROTO_STATS_REP_STEP_AT, stats.step);
    put_u32(out + LPN_PROTO_STATS_REP_SATURATIONS_AT, stats.saturations);
    put_u32(out + LPN_PROTO_STATS_REP_SEEN_AT, stats.seen);
    out[LPN_PROTO_STATS_REP_TASK_AT] = stats.task;
    for (i = 0; i < p->layers; i++) {
        uint8_t *record = out + LPN_PROTO_STATS_REP_LAYER_AT + (size_t)i * LPN_PROTO_STATS_REP_LAYER_RECORD;
        put_u16(record + LPN_PROTO_STATS_REP_LAYER_BUDGET_AT, stats.layer[i].budget);
        put_i32(record + LPN_PROTO_STATS_REP_LAYER_LOSS_FAST_AT, stats.layer[i].loss_fast);
        put_i32(record + LPN_PROTO_STATS_REP_LAYER_LOSS_SLOW_AT, stats.layer[i].loss_slow);
    }
    *out_length = LPN_PROTO_STATS_REP_SIZE(p->layers);
    return LPN_PROTO_OK;
}

static int cmd_predict(struct lpn_protocol *p, const uint8_t *in, size_t in_length, uint8_t *out,
                       size_t *out_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;
    int16_t *x = p->cfg.vectors;
    int16_t *y = p->cfg.vectors + p->inputs;
    uint8_t task;
    uint16_t i;
    int result;

    if (in_length != LPN_PROTO_PREDICT_REQ_SIZE(p->inputs)) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    task = in[LPN_PROTO_PREDICT_REQ_TASK_AT];
    if (task != LPN_PROTO_ALL_TASKS && task >= p->tasks) {
        return LPN_PROTO_ERR_TASK;
    }
    read_vector(x, in + LPN_PROTO_PREDICT_REQ_X_AT, p->inputs);
    result = ops->predict(ops->context, task, x, y);
    if (result < 0) {
        return learner_status(result);
    }
    if ((long)result >= (long)p->outputs) {
        return LPN_PROTO_ERR_LEARNER_FAILED;
    }
    put_u16(out + LPN_PROTO_PREDICT_REP_CLASS_AT, (uint16_t)result);
    for (i = 0; i < p->outputs; i++) {
        put_i16(out + LPN_PROTO_PREDICT_REP_Y_AT + 2u * (size_t)i, y[i]);
    }
    *out_length = LPN_PROTO_PREDICT_REP_SIZE(p->outputs);
    return LPN_PROTO_OK;
}

static int cmd_learn(struct lpn_protocol *p, const uint8_t *in, size_t in_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;
    int16_t *x = p->cfg.vectors;
    int16_t *t = p->cfg.vectors + p->inputs;
    uint8_t task;

    if (in_length != LPN_PROTO_LEARN_REQ_SIZE(p->inputs, p->outputs)) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    task = in[LPN_PROTO_LEARN_REQ_TASK_AT];
    if (task >= p->tasks) {
        return LPN_PROTO_ERR_TASK;
    }
    read_vector(x, in + LPN_PROTO_LEARN_REQ_X_AT, p->inputs);
    read_vector(t, in + LPN_PROTO_LEARN_REQ_T_AT(p->inputs), p->outputs);
    return learner_status(ops->learn(ops->context, task, x, t));
}

/* The commands whose request is empty and whose reply carries only a status. */
static int run_simple(int (*callback)(void *context), void *context, size_t in_length)
{
    if (callback == NULL) {
        return LPN_PROTO_ERR_UNSUPPORTED;
    }
    if (in_length != 0u) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    return learner_status(callback(context));
}

/* save and load: besides the learner's codes, the storage's own statuses reach
 * the host. The transfer is void either way, since the firmware may stage the
 * state in the transfer's buffer. */
static int run_storage(struct lpn_protocol *p, int (*callback)(void *context), size_t in_length)
{
    int result;

    if (callback == NULL) {
        return LPN_PROTO_ERR_UNSUPPORTED;
    }
    if (in_length != 0u) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    p->transfer = LPN_TRANSFER_NONE;
    result = callback(p->cfg.ops->context);
    switch (result) {
    case LPN_PROTO_ERR_UNSUPPORTED:
    case LPN_PROTO_ERR_NO_SAVED_STATE:
    case LPN_PROTO_ERR_STORAGE_FAILED:
    case LPN_PROTO_ERR_STORAGE_FULL:
    case LPN_PROTO_ERR_SAVED_MODEL_DIFFERS:
        return result;
    default:
        return learner_status(result);
    }
}

static int cmd_storage(struct lpn_protocol *p, size_t in_length, uint8_t *out, size_t *out_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;
    struct lpn_storage_status status;
    int result;

    if (ops->storage == NULL) {
        return LPN_PROTO_ERR_UNSUPPORTED;
    }
    if (in_length != LPN_PROTO_STORAGE_REQ_SIZE) {
        return LPN_PROTO_ERR_BAD_LENGTH;
    }
    memset(&status, 0, sizeof status);
    result = ops->storage(ops->context, &status);
    if (result < 0) {
        return learner_status(result);
    }
    out[LPN_PROTO_STORAGE_REP_PRESENT_AT] = status.present;
    out[LPN_PROTO_STORAGE_REP_BOOT_STATUS_AT] = (uint8_t)status.boot_status;
    put_u32(out + LPN_PROTO_STORAGE_REP_CAPACITY_AT, status.capacity);
    put_u32(out + LPN_PROTO_STORAGE_REP_SAVES_AT, status.saves);
    *out_length = LPN_PROTO_STORAGE_REP_SIZE;
    return LPN_PROTO_OK;
}

/* Runs one CRC-checked request; the reply payload goes to out, at most
 * max_frame - REPLY_ROOM bytes (every size was bounded at init). */
static int run_command(struct lpn_protocol *p, uint8_t cmd, const uint8_t *in, size_t in_length, uint8_t *out,
                       size_t *out_length)
{
    const struct lpn_learner_ops *ops = p->cfg.ops;
    int status;

    *out_length = 0;
    switch (cmd) {
    case LPN_PROTO_CMD_HELLO:
        if (in_length != LPN_PROTO_HELLO_REQ_SIZE) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        /* A session starts: whatever transfer an earlier host left is void. */
        p->transfer = LPN_TRANSFER_NONE;
        put_u16(out + LPN_PROTO_HELLO_REP_PROTOCOL_VERSION_AT, LPN_PROTO_VERSION);
        put_u16(out + LPN_PROTO_HELLO_REP_MAX_FRAME_AT, p->cfg.max_frame);
        *out_length = LPN_PROTO_HELLO_REP_SIZE;
        return get_u16(in + LPN_PROTO_HELLO_REQ_HOST_VERSION_AT) == LPN_PROTO_VERSION ? LPN_PROTO_OK
                                                                                       : LPN_PROTO_ERR_VERSION;
    case LPN_PROTO_CMD_INFO:
        if (in_length != LPN_PROTO_INFO_REQ_SIZE) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        return cmd_info(p, out, out_length);
    case LPN_PROTO_CMD_STATS:
        if (ops->stats == NULL) {
            return LPN_PROTO_ERR_UNSUPPORTED;
        }
        if (in_length != LPN_PROTO_STATS_REQ_SIZE) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        return cmd_stats(p, out, out_length);
    case LPN_PROTO_CMD_PREDICT:
        if (ops->predict == NULL) {
            return LPN_PROTO_ERR_UNSUPPORTED;
        }
        return cmd_predict(p, in, in_length, out, out_length);
    case LPN_PROTO_CMD_LEARN:
        if (ops->learn == NULL) {
            return LPN_PROTO_ERR_UNSUPPORTED;
        }
        return cmd_learn(p, in, in_length);
    case LPN_PROTO_CMD_CONTRAST:
        if (ops->contrast == NULL) {
            return LPN_PROTO_ERR_UNSUPPORTED;
        }
        if (in_length != LPN_PROTO_CONTRAST_REQ_SIZE(p->inputs)) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        read_vector(p->cfg.vectors, in + LPN_PROTO_CONTRAST_REQ_X_AT, p->inputs);
        return learner_status(ops->contrast(ops->context, p->cfg.vectors));
    case LPN_PROTO_CMD_REPLAY:
        if (ops->replay == NULL) {
            return LPN_PROTO_ERR_UNSUPPORTED;
        }
        if (in_length != LPN_PROTO_REPLAY_REQ_SIZE) {
            return LPN_PROTO_ERR_BAD_LENGTH;
        }
        return learner_status(ops->replay(ops->context, get_u16(in + LPN_PROTO_REPLAY_REQ_COUNT_AT)));
    case LPN_PROTO_CMD_CONSOLIDATE:
        return run_simple(ops->consolidate, ops->context, in_length);
    case LPN_PROTO_CMD_STRUCTURAL:
        return run_simple(ops->structural, ops->context, in_length);
    case LPN_PROTO_CMD_RESET:
        status = run_simple(ops->reset, ops->context, in_length);
        if (status == LPN_PROTO_OK) {
            p->transfer = LPN_TRANSFER_NONE;
        }
        return status;
    case LPN_PROTO_CMD_SAVE:
        return run_storage(p, ops->save, in_length);
    case LPN_PROTO_CMD_LOAD:
        return run_storage(p, ops->load, in_length);
    case LPN_PROTO_CMD_STORAGE:
        return cmd_storage(p, in_length, out, out_length);
    case LPN_PROTO_CMD_GET_STATE:
        return cmd_state_get(p, in, in_length, out, out_length);
    case LPN_PROTO_CMD_PUT_STATE_BEGIN:
    case LPN_PROTO_CMD_PUT_STATE_CHUNK:
    case LPN_PROTO_CMD_PUT_STATE_COMMIT:
        return cmd_state_put(p, cmd, in, in_length);
    default:
        return LPN_PROTO_ERR_UNKNOWN_COMMAND;
    }
}

static int handle_frame(struct lpn_protocol *p)
{
    uint8_t *frame = p->rx.buffer;
    uint8_t *raw = p->cfg.tx_buffer + p->tx_offset;
    size_t decoded = 0;
    size_t length;
    size_t payload_length;
    uint32_t crc;
    int status;

    if (lpn_cobs_decode(frame, p->rx.length, frame, p->rx.length, &decoded) < 0 || decoded < REQUEST_ROOM) {
        return send_error(p, decoded > 0u ? frame[0] : 0u, decoded > 1u ? frame[1] : 0u,
                          LPN_PROTO_ERR_MALFORMED);
    }
    length = decoded;
    if (length > p->cfg.max_frame) {
        return send_error(p, frame[0], frame[1], LPN_PROTO_ERR_OVERSIZED);
    }
    crc = get_u32(frame + length - LPN_PROTO_CRC_SIZE);
    if (lpn_crc32_update(0u, frame, length - LPN_PROTO_CRC_SIZE) != crc) {
        return send_error(p, frame[0], frame[1], LPN_PROTO_ERR_BAD_CRC);
    }
    /* A repeat of the last request means its reply was lost: send that reply
     * again rather than run the request twice (a second learn step would make
     * the device's state differ from the host's model). */
    if (p->cached && frame[0] != LPN_PROTO_CMD_HELLO && frame[1] == p->last_seq && crc == p->last_crc) {
        return p->cfg.write(p->cfg.write_context, p->cfg.tx_buffer, p->tx_length);
    }

    status = run_command(p, frame[0], frame + LPN_PROTO_REQUEST_HEADER, length - REQUEST_ROOM,
                         raw + LPN_PROTO_REPLY_HEADER, &payload_length);
    /* Error replies carry no payload, except hello's version refusal, which
     * tells the host which version the device speaks. */
    if (status != LPN_PROTO_OK && !(frame[0] == LPN_PROTO_CMD_HELLO && status == LPN_PROTO_ERR_VERSION)) {
        payload_length = 0;
    }
    raw[0] = (uint8_t)(frame[0] | LPN_PROTO_REPLY_FLAG);
    raw[1] = frame[1];
    raw[2] = (uint8_t)status;
    length = LPN_PROTO_REPLY_HEADER + payload_length;
    put_u32(raw + length, lpn_crc32_update(0u, raw, length));
    length += LPN_PROTO_CRC_SIZE;
    length = lpn_cobs_encode(raw, length, p->cfg.tx_buffer, p->cfg.tx_size - 1u);
    p->cfg.tx_buffer[length] = 0u;
    p->tx_length = length + 1u;
    p->cached = 1;
    p->last_seq = frame[1];
    p->last_crc = crc;
    return p->cfg.write(p->cfg.write_context, p->cfg.tx_buffer, p->tx_length);
}

int lpn_protocol_feed(struct lpn_protocol *p, uint8_t byte)
{
    int result;

    switch (lpn_frame_assembler_feed(&p->rx, byte)) {
    case LPN_FRAME_READY:
        result = handle_frame(p);
        break;
    case LPN_FRAME_OVERSIZED:
        result = send_error_from_prefix(p, LPN_PROTO_ERR_OVERSIZED);
        break;
    default:
        return 0;
    }
    return result < 0 ? result : 1;
}
