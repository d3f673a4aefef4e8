"""PlatformIO pre-script: puts the learner generated from a model file into the build.

The firmware includes `learner.h`, which is generated per environment from a model
file and never stored in the source tree. This script runs before every build of an
environment that lists it in `extra_scripts`:

1. It makes sure the environment's generated folder holds the right learner, through
   `lpn.build_firmware.ensure_learner` (see that module for which model is chosen:
   LPN_MODEL, else the learner `lpn build` made last, else `custom_lpn_model`).
2. It adds that folder to PlatformIO's library folders. The folder holds one library,
   `learner/`, which the dependency finder picks up because src/ includes learner.h;
   the learner's own `#include "lpn_core.h"` then pulls in lib/lpn_core.

The folder is LPN_GENERATED_DIR if set, otherwise `.pio/generated/<env>/` of the
project. If the `lpn` host package cannot be imported by PlatformIO's Python (a
separate PlatformIO installation), a learner generated beforehand is used as it is.
"""
import os
import sys

Import("env")  # noqa: F821 (provided by SCons)

project_dir = env.subst("$PROJECT_DIR")  # noqa: F821
pioenv = env.subst("$PIOENV")  # noqa: F821
generated = os.environ.get("LPN_GENERATED_DIR") or os.path.join(
    env.subst("$PROJECT_WORKSPACE_DIR"), "generated", pioenv  # noqa: F821
)
requested = os.environ.get("LPN_MODEL") or None
default_spec = env.GetProjectOption("custom_lpn_model", "")  # noqa: F821

try:
    from lpn import build_firmware
except ImportError:
    build_firmware = None

if build_firmware is not None:
    try:
        learner = build_firmware.ensure_learner(generated, requested, default_spec, base_dir=project_dir)
    except Exception as exc:  # any failure must stop the build with its reason
        sys.stderr.write("Error: cannot generate the learner for %s: %s\n" % (pioenv, exc))
        env.Exit(1)  # noqa: F821
    print("LPN learner: model %s (%s..., from %s) in %s"
          % (learner.name, learner.model_hash[:16], learner.origin, generated))
elif requested or not os.path.isfile(os.path.join(generated, "learner", "learner.h")):
    sys.stderr.write(
        "Error: no generated learner in %s, and this PlatformIO's Python cannot import the lpn "
        "host tool to make one. Generate it first: `lpn flash --env %s --model MODEL --dry-run`, "
        "or set LPN_GENERATED_DIR to a folder made that way.\n" % (generated, pioenv)
    )
    env.Exit(1)  # noqa: F821

env.Append(LIBSOURCE_DIRS=[generated])  # noqa: F821
