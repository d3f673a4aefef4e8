/*
 * PLACEHOLDER for the serial protocol loop: echoes every received byte.
 *
 * It lets the board glue, the emulator and the host's serial link be tested end
 * to end before the protocol exists; the protocol loop replaces it with the
 * same shape (one non-blocking step per call).
 */
#ifndef ECHO_PLACEHOLDER_H
#define ECHO_PLACEHOLDER_H

#include "lpn_board.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Echoes whatever has arrived. Returns how many bytes it echoed (0: nothing had
 * arrived), or a negative lpn_board_error when the link is closed or failed. */
int echo_placeholder_step(const struct lpn_board *board);

#ifdef __cplusplus
}
#endif

#endif /* ECHO_PLACEHOLDER_H */
