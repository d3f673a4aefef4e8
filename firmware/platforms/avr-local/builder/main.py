"""SCons build script of the avr-local dev-platform.

PlatformIO's core runs this for every environment with `platform = ...avr-local`.
The toolchain comes from PATH (Debian's gcc-avr with avr-libc) rather than from
a PlatformIO package, so no build ever needs PlatformIO's registry. The board
manifest's build.mcu and build.f_cpu select the chip and the clock.
"""
from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()

env.Replace(
    AR="avr-gcc-ar",
    AS="avr-as",
    CC="avr-gcc",
    CXX="avr-g++",
    GDB="avr-gdb",
    OBJCOPY="avr-objcopy",
    RANLIB="avr-gcc-ranlib",
    SIZETOOL="avr-size",
    ARFLAGS=["rc"],
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    # Sections in flash and in RAM, for PlatformIO's size check against the
    # board's upload.maximum_size / maximum_ram_size.
    SIZEPROGREGEXP=r"^(?:\.text|\.data|\.bootloader)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit)\s+(\d+).*",
    SIZEEEPROMREGEXP=r"^(?:\.eeprom)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -C --mcu=$BOARD_MCU $SOURCES",
)

machine_flags = ["-mmcu=%s" % board.get("build.mcu")]

env.Append(
    ASFLAGS=machine_flags,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=machine_flags
    + [
        "-Os",
        "-g",
        "-ffunction-sections",
        "-fdata-sections",
        "-fno-common",
    ],
    CXXFLAGS=["-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"],
    CPPDEFINES=[
        ("F_CPU", "$BOARD_F_CPU"),
        ("LPN_BOARD_MCU", "$BOARD_MCU"),
    ],
    LINKFLAGS=machine_flags
    + [
        "-Os",
        "-g",
        "-Wl,--gc-sections",
        "-Wl,--fatal-warnings",
        "-Wl,-Map,${BUILD_DIR}/${PROGNAME}.map",
    ],
)

program = env.BuildProgram()

# An Intel HEX image next to the ELF, for flashing a real chip with avrdude.
hex_image = env.Command(
    "$BUILD_DIR/${PROGNAME}.hex",
    program,
    env.VerboseAction("$OBJCOPY -O ihex -R .eeprom $SOURCE $TARGET", "Building $TARGET"),
)

AlwaysBuild(env.Alias("size", program, env.VerboseAction("$SIZEPRINTCMD", "Program size")))

Default([program, hex_image])
