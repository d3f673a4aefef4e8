"""SCons build script of the arm-none-eabi-local dev-platform.

PlatformIO's core runs this for every environment with `platform = ...arm-none-eabi-local`.
The toolchain comes from PATH (Debian's gcc-arm-none-eabi) rather than from a
PlatformIO package, so no build ever needs PlatformIO's registry.
"""
from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="gdb-multiarch",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    # Sections that occupy flash and RAM, for PlatformIO's size check against the
    # board's upload.maximum_size / maximum_ram_size.
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.ARM\.exidx|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

machine_flags = ["-mthumb", "-mcpu=%s" % board.get("build.cpu")]
# The board manifest says whether the core has an FPU the ABI may use; the
# firmware's startup code enables it before main when __ARM_FP is defined.
if board.get("build.fpu", ""):
    machine_flags += [
        "-mfpu=%s" % board.get("build.fpu"),
        "-mfloat-abi=%s" % board.get("build.float_abi", "hard"),
    ]
else:
    machine_flags += ["-mfloat-abi=soft"]

env.Append(
    ASFLAGS=machine_flags,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=machine_flags
    + [
        "-Os",
        "-g",
        "-ffunction-sections",
        "-fdata-sections",
        "-ffreestanding",
        "-fno-common",
    ],
    CXXFLAGS=["-fno-rtti", "-fno-exceptions"],
    CPPDEFINES=[
        ("F_CPU", "$BOARD_F_CPU"),
        ("LPN_BOARD_MCU", "$BOARD_MCU"),
    ],
    LINKFLAGS=machine_flags
    + [
        "-Os",
        "-g",
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-Wl,--fatal-warnings",
        "-Wl,-Map,${BUILD_DIR}/${PROGNAME}.map",
    ],
    LIBS=["c", "gcc"],
)

program = env.BuildProgram()

AlwaysBuild(env.Alias("size", program, env.VerboseAction("$SIZEPRINTCMD", "Program size")))

Default([program])
