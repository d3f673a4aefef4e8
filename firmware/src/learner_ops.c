#include "learner_ops.h"

#include "learner.h"          /* generated for this build: the learner's API and sizes */
#include "learner_meta.h"     /* generated next to it: the model's SHA-256 and task masks */

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
    NULL, /* save: no persistent storage yet, so the protocol replies unsupported */
    NULL, /* load */
};

const struct lpn_learner_ops *learner_ops_init(const struct lpn_board *board)
{
    if (board == NULL || learner_init(&model) != LPN_OK) {
        return NULL;
    }
    host_board = board;
    return &ops;
}
