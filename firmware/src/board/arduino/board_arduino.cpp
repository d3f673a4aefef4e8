/*
 * Board glue and entry point of the Arduino-framework builds (Nucleo, Uno,
 * ESP32, Pico): the host link is the board's `Serial`, the clock `millis()`.
 * The framework owns main(), so the loop step runs from loop().
 */
#include <Arduino.h>

#include "echo_placeholder.h"
#include "lpn_board.h"

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
    return &arduino_board;
}

static const struct lpn_board *board;

void setup()
{
    board = lpn_board_init();
}

void loop()
{
    (void)echo_placeholder_step(board);
}
