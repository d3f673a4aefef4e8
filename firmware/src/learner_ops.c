#include "learner_ops.h"

#include "learner.h"          /* generated for this build: the learner's API and sizes */
#include "learner_meta.h"     /* generated next to it: the model's SHA-256 and task masks */
#include "lpn_storage.h"

#include <string.h>

/* Compile-time checks (C99 has no static_assert): a negative array size stops
 * the build when the generated learner does not fit the protocol's fields. */
#define COMPILE_TIME_CHECK(name, condition) typedef char compile_time_check_##name[(condition) ? 1 : -1]

COMPILE_TIME_CHECK(layers_fit_stats, LEARNER_N_LAYERS >= 1 && LEARNER_N_LAYERS <= LPN_PROTO_MAX_LAYERS);
/* Task ids travel as u8, and 0xFF means "all tasks" in predict. */
COMPILE_TIME_CHECK(tasks_fit_u8, LEARNER_N_TASKS >= 1 && LEARNER_N_TASKS < LPN_PROTO_ALL_TASKS);
COMPILE_TIME_CHECK(sizes_fit_u16, LEARNER_N_INPUTS <= 0xFFFF && LEARNER_N_OUTPUTS <= 0xFFFF);

/* In flash (LPN_FLASH): on AVR a plain const array would take RAM. */
static const uint8_t model_hash[32] LPN_FLASH = LEARNER_MODEL_SHA256;
static const uint8_t task_masks[LEARNER_N_TASKS][LEARNER_TASK_MASK_BYTES] LPN_FLASH = LEARNER_TASK_MASKS;

static learner_model model;
static const struct lpn_board *host_board;

/* Persistence: a saved state is the model's SHA-256 followed by the exported
 * state, staged in the scratch buffer handed over by learner_ops_attach_storage. */
static uint8_t *scratch;
static size_t scratch_size;
static int8_t boot_status = LPN_PROTO_ERR_UNSUPPORTED;
static uint32_t saves;

static int adapter_info(void *context, struct lpn_learner_info *info)
{
    (void)context;
    info->inputs = (uint16_t)LEARNER_N_INPUTS;
    info->outputs = (uint16_t)LEARNER_N_OUTPUTS;
    info->tasks = (uint8_t)LEARNER_N_TASKS;
    info->layers = (uint8_t)LEARNER_N_LAYERS;
    info->state_bytes = (uint32_t)LEARNER_STATE_BYTES;
    info->synapses = (uint32_t)LEARNER_SYNAPSES;
    /* Asked at every info request, so the host sees the board's current figure. */
    info->free_ram = host_board->free_ram != NULL ? host_board->free_ram() : 0u;
    lpn_copy_from_flash(info->model_hash, model_hash, sizeof model_hash);
    info->firmware_version = LPN_FIRMWARE_VERSION;
    info->board = host_board->name;
    return LPN_OK;
}

static int output_in_task(uint8_t task, uint16_t output)
{
    if (task == LPN_PROTO_ALL_TASKS) {
        return 1;
    }
    return (LPN_RD_U8(&task_masks[task][output / 8u]) >> (output % 8u)) & 1u;
}

static int adapter_predict(void *context, uint8_t task, const int16_t *x, int16_t *y)
{
    int result;
    int best = -1;
    uint16_t o;

    (void)context;
    if (task != LPN_PROTO_ALL_TASKS && task >= LEARNER_N_TASKS) {
        return LPN_ERR_TASK;
    }
    result = learner_predict(&model, x, LEARNER_N_INPUTS, y, LEARNER_N_OUTPUTS);
    if (result < 0) {
        return result;
    }
    /* The class among the task's outputs, chosen from the outputs just computed
     * (learner_predict_class would run the forward pass a second time). Strictly
     * greater: a tie goes to the lower index, as in the learner. */
    for (o = 0; o < LEARNER_N_OUTPUTS; o++) {
        if (output_in_task(task, o) && (best < 0 || y[o] > y[best])) {
            best = (int)o;
        }
    }
    return best >= 0 ? best : LPN_ERR_TASK;
}

static int adapter_learn(void *context, uint8_t task, const int16_t *x, const int16_t *t)
{
    (void)context;
    return learner_learn(&model, x, LEARNER_N_INPUTS, t, LEARNER_N_OUTPUTS, task);
}

static int adapter_contrast(void *context, const int16_t *x)
{
    (void)context;
    return learner_contrast(&model, x, LEARNER_N_INPUTS);
}

static int adapter_consolidate(void *context)
{
    (void)context;
    return learner_consolidate(&model);
}

static int adapter_replay(void *context, uint16_t count)
{
    (void)context;
    return learner_replay(&model, count);
}

static int adapter_structural(void *context)
{
    (void)context;
    return learner_structural(&model);
}

static int adapter_stats(void *context, struct lpn_learner_stats *stats)
{
    learner_stats s;
    unsigned l;
    int result;

    (void)context;
    result = learner_get_stats(&model, &s);
    if (result < 0) {
        return result;
    }
    stats->step = s.step;
    stats->saturations = s.saturations;
    stats->seen = s.seen;
    stats->task = s.task;
    for (l = 0; l < LEARNER_N_LAYERS; l++) {
        stats->layer[l].budget = s.budget[l];
        stats->layer[l].loss_fast = s.loss_fast[l];
        stats->layer[l].loss_slow = s.loss_slow[l];
    }
    return LPN_OK;
}

static int adapter_export_state(void *context, uint8_t *out, size_t size)
{
    (void)context;
    return learner_export_state(&model, out, size);
}

static int adapter_import_state(void *context, const uint8_t *in, size_t size)
{
    (void)context;
    return learner_import_state(&model, in, size);
}

static int adapter_reset(void *context)
{
    (void)context;
    return learner_init(&model);
}

static const struct lpn_storage_config *usable_storage(void)
{
    if (host_board->storage == NULL || scratch == NULL || scratch_size < LEARNER_OPS_SAVED_BYTES(LEARNER_STATE_BYTES)) {
        return NULL;
    }
    return host_board->storage;
}

static int adapter_save(void *context)
{
    const struct lpn_storage_config *storage = usable_storage();
    long capacity;
    int result;

    (void)context;
    if (storage == NULL) {
        return LPN_PROTO_ERR_UNSUPPORTED;
    }
    capacity = lpn_storage_capacity(storage);
    if (capacity < 0) {
        return LPN_PROTO_ERR_STORAGE_FAILED;
    }
    if ((unsigned long)capacity < (unsigned long)LEARNER_OPS_SAVED_BYTES(LEARNER_STATE_BYTES)) {
        return LPN_PROTO_ERR_STORAGE_FULL;
    }
    lpn_copy_from_flash(scratch, model_hash, sizeof model_hash);
    result = learner_export_state(&model, scratch + sizeof model_hash, LEARNER_STATE_BYTES);
    if (result < 0) {
        return result;
    }
    result = lpn_storage_save(storage, scratch, (uint32_t)LEARNER_OPS_SAVED_BYTES(LEARNER_STATE_BYTES));
    if (result == LPN_STORAGE_ERR_NOSPACE) {
        return LPN_PROTO_ERR_STORAGE_FULL;
    }
    if (result < 0) {
        return LPN_PROTO_ERR_STORAGE_FAILED;
    }
    saves++;
    return LPN_OK;
}

static int adapter_load(void *context)
{
    const struct lpn_storage_config *storage = usable_storage();
    uint8_t hash[sizeof model_hash];
    uint32_t length = 0;
    int result;

    (void)context;
    if (storage == NULL) {
        return LPN_PROTO_ERR_UNSUPPORTED;
    }
    result = lpn_storage_load(storage, scratch, (uint32_t)scratch_size, &length);
    if (result == LPN_STORAGE_ERR_NOENT) {
        return LPN_PROTO_ERR_NO_SAVED_STATE;
    }
    if (result == LPN_STORAGE_ERR_NOSPACE) {
        return LPN_PROTO_ERR_SAVED_MODEL_DIFFERS; /* longer than any state of this model */
    }
    if (result < 0) {
        return LPN_PROTO_ERR_STORAGE_FAILED;
    }
    lpn_copy_from_flash(hash, model_hash, sizeof hash);
    if (length != LEARNER_OPS_SAVED_BYTES(LEARNER_STATE_BYTES) || memcmp(scratch, hash, sizeof hash) != 0) {
        return LPN_PROTO_ERR_SAVED_MODEL_DIFFERS;
    }
    /* The learner checks the state and changes nothing if it is not one it can reach. */
    return learner_import_state(&model, scratch + sizeof hash, LEARNER_STATE_BYTES);
}

static int adapter_storage(void *context, struct lpn_storage_status *status)
{
    const struct lpn_storage_config *storage = usable_storage();
    long capacity = storage != NULL ? lpn_storage_capacity(storage) : 0;

    (void)context;
    status->present = storage != NULL ? 1u : 0u;
    status->boot_status = boot_status;
    /* The state's own room: the model's SHA-256 is stored before it. */
    status->capacity = capacity > (long)sizeof model_hash ? (uint32_t)(capacity - (long)sizeof model_hash) : 0u;
    status->saves = saves;
    return LPN_OK;
}

static const struct lpn_learner_ops ops = {
    NULL,
    adapter_info,
    adapter_predict,
    adapter_learn,
    adapter_contrast,
    adapter_consolidate,
    adapter_replay,
    adapter_structural,
    adapter_stats,
    adapter_export_state,
    adapter_import_state,
    adapter_reset,
    adapter_save,
    adapter_load,
    adapter_storage,
};

const struct lpn_learner_ops *learner_ops_init(const struct lpn_board *board)
{
    if (board == NULL || learner_init(&model) != LPN_OK) {
        return NULL;
    }
    host_board = board;
    return &ops;
}

int learner_ops_attach_storage(uint8_t *buffer, size_t size)
{
    int result;

    scratch = buffer;
    scratch_size = size;
    result = adapter_load(NULL);
    /* Every status fits an int8: the protocol's codes are -128..0. */
    boot_status = result < 0 ? (int8_t)result : (int8_t)LPN_PROTO_OK;
    return boot_status;
}
