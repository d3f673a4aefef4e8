/*
 * The board layer on the target itself: clock, UART, FPU and exit, checked
 * through `pio test -e <env>` (QEMU for the mps2 boards, a process for native).
 */
#include <stdint.h>

#include "lpn_board.h"
#include "lpn_check.h"

static const struct lpn_board *board;

static uint32_t now_ms(void)
{
    return board->clock.millis(board->clock.context);
}

static void clock_advances(void)
{
    uint32_t start = now_ms();
    uint32_t now = start;
    /* Bounded so a stopped clock fails the check instead of hanging the run. */
    for (uint32_t spins = 0; spins < 50000000u && now - start < 5u; spins++) {
        now = now_ms();
    }
    LPN_CHECK(now - start >= 5u);
}

static void clock_never_runs_backwards(void)
{
    uint32_t previous = now_ms();
    int backwards = 0;
    for (int i = 0; i < 100000; i++) {
        uint32_t now = now_ms();
        backwards |= (int32_t)(now - previous) < 0;
        previous = now;
    }
    LPN_CHECK(!backwards);
}

static void uart_reports_no_input_without_blocking(void)
{
    /* The runner sends nothing, so a read returns at once with an error code. */
    LPN_CHECK(board->uart.read_byte(board->uart.context) < 0);
}

static void uart_write_succeeds(void)
{
    static const uint8_t empty_line[] = {'\n'};
    LPN_CHECK(board->uart.write(board->uart.context, empty_line, 1) == LPN_BOARD_OK);
}

static void board_is_named(void)
{
    LPN_CHECK(board->name != 0 && board->name[0] != '\0');
}

static void floating_point_works(void)
{
    /* On a hard-float build this faults unless the startup code enabled the FPU. */
    volatile float a = 1.5f;
    volatile float b = 2.25f;
    LPN_CHECK(a * b == 3.375f);
}

#ifdef LPN_TEST_FORCE_FAILURE
static void forced_failure(void)
{
    /* Proves the harness reports failures: built only on request. */
    LPN_CHECK(1 + 1 == 3);
}
#endif

int main(void)
{
    board = lpn_board_init();
    lpn_check_begin(board);
    lpn_check_case("clock_advances", clock_advances);
    lpn_check_case("clock_never_runs_backwards", clock_never_runs_backwards);
    lpn_check_case("uart_reports_no_input_without_blocking", uart_reports_no_input_without_blocking);
    lpn_check_case("uart_write_succeeds", uart_write_succeeds);
    lpn_check_case("board_is_named", board_is_named);
    lpn_check_case("floating_point_works", floating_point_works);
#ifdef LPN_TEST_FORCE_FAILURE
    lpn_check_case("forced_failure", forced_failure);
#endif
    return lpn_check_end();
}
