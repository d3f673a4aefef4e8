#include "lpn_core.h"

const char *lpn_status_name(int status)
{
    switch (status) {
    case LPN_OK:
        return "ok";
    case LPN_ERR_ARG:
        return "null argument";
    case LPN_ERR_LENGTH:
        return "bad length";
    case LPN_ERR_TASK:
        return "unknown task";
    case LPN_ERR_REPLAY_EMPTY:
        return "replay buffer empty";
    case LPN_ERR_DISABLED:
        return "mechanism disabled";
    case LPN_ERR_STATE:
        return "invalid state";
    case LPN_ERR_CONNECTIVITY:
        return "connectivity differs";
    default:
        return "unknown status";
    }
}
