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

#ifdef __cplusplus
}
#endif

#endif /* LEARNER_OPS_H */
