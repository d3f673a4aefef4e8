/*
 * The firmware's main loop step: bytes from the board's UART go to the serial
 * protocol (lib/lpn_protocol), which answers every frame through the UART and
 * drives the generated learner through learner_ops.
 *
 * One non-blocking step per call, so the same loop runs from main() on bare
 * metal and the desktop, and from loop() under the Arduino framework.
 */
#ifndef PROTOCOL_LOOP_H
#define PROTOCOL_LOOP_H

#include "lpn_board.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Initialises the learner and the protocol on `board` (which must outlive the
 * loop) and sends the protocol's opening delimiter. Returns 0, or a negative
 * code: an lpn_protocol status when the learner does not fit this build's frame
 * limit (LPN_DEVICE_MAX_FRAME), or a board error when the UART failed. */
int protocol_loop_init(const struct lpn_board *board);

/* Feeds whatever has arrived to the protocol. Returns how many bytes it
 * consumed (0: nothing had arrived), or a negative lpn_board_error when the
 * link is closed or failed. */
int protocol_loop_step(const struct lpn_board *board);

#ifdef __cplusplus
}
#endif

#endif /* PROTOCOL_LOOP_H */
