/*
 * A minimal on-target check harness for `pio test`: results go to the host over
 * the board's own UART, one line per case, read by test_custom_runner.py:
 *
 *   lpn-test:PASS <case>
 *   lpn-test:FAIL <case> <file>:<line> <expression>
 *   lpn-test:END <failed cases>
 *
 * and the program ends through the board's exit() with the number of failed
 * cases, so the emulator's exit status tells the same story.
 */
#ifndef LPN_CHECK_H
#define LPN_CHECK_H

#include "lpn_board.h"

/* Records a failure of the running case when `expression` is false; the case
 * goes on, so one run reports every failed check. */
#define LPN_CHECK(expression)                                            \
    do {                                                                 \
        if (!(expression)) {                                             \
            lpn_check_fail(__FILE__, __LINE__, #expression);             \
        }                                                                \
    } while (0)

void lpn_check_begin(const struct lpn_board *board);
void lpn_check_case(const char *name, void (*body)(void));
void lpn_check_fail(const char *file, int line, const char *expression);

/* Reports the end and exits through the board; returns the number of failed
 * cases only on boards that cannot exit. */
int lpn_check_end(void);

#endif /* LPN_CHECK_H */
