"""SCons build script of the native-local dev-platform.

Builds the firmware as a program for the machine running the build, with the
gcc found on PATH. It stands in for PlatformIO's official `native` platform,
which has to be downloaded from PlatformIO's registry.
"""
from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()

env.Replace(
    AR="gcc-ar",
    AS="as",
    CC="gcc",
    CXX="g++",
    GDB="gdb",
    OBJCOPY="objcopy",
    RANLIB="gcc-ranlib",
    SIZETOOL="size",
    ARFLAGS=["rc"],
    PROGNAME="program",
    PROGSUFFIX="",
)

env.Append(
    CCFLAGS=["-O2", "-g"],
    LINKFLAGS=["-O2", "-g"],
)

program = env.BuildProgram()

# `pio run -e ENV -t exec` runs the program, as with the official native platform.
AlwaysBuild(env.Alias("exec", program, "$SOURCE"))

Default([program])
