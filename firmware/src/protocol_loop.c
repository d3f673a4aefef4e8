#include "protocol_loop.h"

#include "learner.h"
#include "learner_ops.h"
#include "lpn_protocol.h"

/* The longest frame this device accepts and sends. The protocol's own limit
 * suits boards with RAM to spare and makes state transfers fast; a small board
 * passes -DLPN_DEVICE_MAX_FRAME=... (at least what the learner's learn request
 * and info reply need; lpn_protocol_init refuses less). */
#ifndef LPN_DEVICE_MAX_FRAME
#define LPN_DEVICE_MAX_FRAME LPN_PROTO_MAX_FRAME
#endif

/* 0 leaves out the staging buffer of LEARNER_STATE_BYTES: the device then
 * answers get_state, put_state_*, save and load `unsupported`, for boards whose RAM holds
 * the learner but not a second copy of its state. */
#ifndef LPN_DEVICE_STATE_TRANSFER
#define LPN_DEVICE_STATE_TRANSFER 1
#endif

/* Bytes fed per step: long enough to keep up with the UART, short enough that
 * the caller's loop (the Arduino framework's, for one) runs often. */
#define FEED_BURST 64

static uint8_t rx_buffer[LPN_PROTOCOL_BUFFER_SIZE(LPN_DEVICE_MAX_FRAME)];
static uint8_t tx_buffer[LPN_PROTOCOL_BUFFER_SIZE(LPN_DEVICE_MAX_FRAME)];
static int16_t vectors[LEARNER_N_INPUTS + LEARNER_N_OUTPUTS];
#if LPN_DEVICE_STATE_TRANSFER
/* Also stages a saved state (the model's SHA-256, then the state). */
static uint8_t state_buffer[LEARNER_OPS_SAVED_BYTES(LEARNER_STATE_BYTES)];
#endif
static struct lpn_protocol protocol;

int protocol_loop_init(const struct lpn_board *board)
{
    struct lpn_protocol_config config;
    const struct lpn_learner_ops *ops = learner_ops_init(board);

    if (ops == NULL) {
        return LPN_PROTO_ERR_LEARNER_FAILED;
    }
    config.ops = ops;
    config.write = board->uart.write;
    config.write_context = board->uart.context;
    config.max_frame = (uint16_t)LPN_DEVICE_MAX_FRAME;
    config.rx_buffer = rx_buffer;
    config.rx_size = sizeof rx_buffer;
    config.tx_buffer = tx_buffer;
    config.tx_size = sizeof tx_buffer;
    config.vectors = vectors;
    config.vectors_length = sizeof vectors / sizeof vectors[0];
#if LPN_DEVICE_STATE_TRANSFER
    config.state_buffer = state_buffer;
    config.state_buffer_size = sizeof state_buffer;
#else
    config.state_buffer = NULL;
    config.state_buffer_size = 0u;
#endif
    /* The saved state, if any, replaces the compiled-in one before the host is
     * served; a failed load leaves the compiled-in state (the storage command
     * tells the host why). */
    (void)learner_ops_attach_storage(config.state_buffer, config.state_buffer_size);
    return lpn_protocol_init(&protocol, &config);
}

int protocol_loop_step(const struct lpn_board *board)
{
    const struct lpn_uart *uart = &board->uart;
    int count = 0;

    while (count < FEED_BURST) {
        int byte = uart->read_byte(uart->context);
        int result;

        if (byte < 0) {
            /* End of input matters only once everything before it is answered,
             * which it is: each frame's reply is sent before feed returns. */
            return count > 0 || byte == LPN_UART_NO_BYTE ? count : byte;
        }
        result = lpn_protocol_feed(&protocol, (uint8_t)byte);
        if (result < 0) {
            return result;
        }
        count++;
    }
    return count;
}
