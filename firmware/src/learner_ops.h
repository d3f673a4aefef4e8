/*
 * The generated learner behind the protocol's callback struct.
 *
 * The protocol library (lib/lpn_protocol) never calls a learner by name; these
 * adapters connect it to the learner generated for this build (learner.h,
 * made by `lpn build` from a model file, see README.md) and to the board,
 * which reports its name and free RAM. The learner lives in one static object:
 * nothing is allocated.
 */
#ifndef LEARNER_OPS_H
#define LEARNER_OPS_H

#include "lpn_board.h"
#include "lpn_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Firmware version reported by `info`; a build may override it with -D. */
#ifndef LPN_FIRMWARE_VERSION
#define LPN_FIRMWARE_VERSION "0.1.0"
#endif

/* Puts the learner in the state compiled into the firmware and returns its
 * callbacks, which stay valid for the program's life. `board` must outlive
 * them too. Returns NULL if the learner could not be initialised. */
const struct lpn_learner_ops *learner_ops_init(const struct lpn_board *board);

/* Bytes a saved state of `state_bytes` takes: the model's SHA-256 comes first,
 * so a firmware of another model never loads it. */
#define LEARNER_OPS_SAVED_BYTES(state_bytes) (32u + (size_t)(state_bytes))

/* Hands over the scratch buffer save and load stage a state in (at least
 * LEARNER_OPS_SAVED_BYTES(state) bytes; the protocol's state buffer, which they
 * share with get_state and put_state), then loads the newest saved state, if
 * the board has storage and holds one. Returns the load's protocol status
 * (0: restored), which the storage command reports as boot_status. With a
 * NULL buffer, or a board without storage, save and load reply unsupported. */
int learner_ops_attach_storage(uint8_t *buffer, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* LEARNER_OPS_H */
