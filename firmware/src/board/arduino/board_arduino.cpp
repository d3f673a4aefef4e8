/*
 * Board glue and entry point of the Arduino-framework builds (Nucleo, Uno,
 * ESP32, Pico): the host link is the board's `Serial`, the clock `millis()`.
 * The framework owns main(), so the loop step runs from loop().
 */
#include <Arduino.h>

#include "lpn_board.h"
#include "protocol_loop.h"

#ifndef LPN_SERIAL_BAUD
#define LPN_SERIAL_BAUD 115200
#endif

static int serial_read_byte(void *context)
{
    (void)context;
    int byte = Serial.read();
    return byte < 0 ? LPN_UART_NO_BYTE : byte;
}

static int serial_write(void *context, const uint8_t *bytes, size_t length)
{
    (void)context;
    return Serial.write(bytes, length) == length ? LPN_BOARD_OK : LPN_UART_IO;
}

static uint32_t arduino_millis(void *context)
{
    (void)context;
    return (uint32_t)millis();
}

#if defined(__AVR__)
/* avr-libc's heap bounds: without malloc the heap stays empty, so the gap
 * between the end of .bss and the stack pointer is the free RAM. */
extern char __heap_start;
extern char *__brkval;

static uint32_t avr_free_ram(void)
{
    char top;
    const char *heap_end = __brkval != 0 ? __brkval : &__heap_start;
    return (uint32_t)(&top - heap_end);
}
#endif

static lpn_board arduino_board;

const struct lpn_board *lpn_board_init(void)
{
    Serial.begin(LPN_SERIAL_BAUD);
    arduino_board.name = "arduino";
    arduino_board.uart.read_byte = serial_read_byte;
    arduino_board.uart.write = serial_write;
    arduino_board.uart.wait = NULL;
    arduino_board.uart.context = NULL;
    arduino_board.clock.millis = arduino_millis;
    arduino_board.clock.context = NULL;
    arduino_board.exit = NULL;
#if defined(__AVR__)
    arduino_board.free_ram = avr_free_ram;
#else
    arduino_board.free_ram = NULL; /* no portable measure across the framework's cores */
#endif
    arduino_board.storage = NULL; /* persistence: not wired for the framework's boards yet */
    return &arduino_board;
}

static const struct lpn_board *board;
static bool serving;

void setup()
{
    board = lpn_board_init();
    /* A learner too large for this build's frame limit leaves the board
     * silent rather than answering with sizes it cannot honour. */
    serving = protocol_loop_init(board) == 0;
}

void loop()
{
    if (serving) {
        (void)protocol_loop_step(board);
    }
}
