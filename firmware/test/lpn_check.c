#include "lpn_check.h"

#include <string.h>

static const struct lpn_board *check_board;
static int failed_cases;
static int case_failed;
static const char *running_case;

static void put_text(const char *text)
{
    check_board->uart.write(check_board->uart.context, (const uint8_t *)text, strlen(text));
}

static void put_decimal(unsigned value)
{
    char digits[12];
    size_t at = sizeof digits;
    digits[--at] = '\0';
    do {
        digits[--at] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    put_text(&digits[at]);
}

void lpn_check_begin(const struct lpn_board *board)
{
    check_board = board;
    failed_cases = 0;
}

void lpn_check_case(const char *name, void (*body)(void))
{
    running_case = name;
    case_failed = 0;
    body();
    if (!case_failed) {
        put_text("lpn-test:PASS ");
        put_text(name);
        put_text("\n");
    }
}

void lpn_check_fail(const char *file, int line, const char *expression)
{
    if (!case_failed) {
        failed_cases++;
    }
    case_failed = 1;
    put_text("lpn-test:FAIL ");
    put_text(running_case);
    put_text(" ");
    put_text(file);
    put_text(":");
    put_decimal((unsigned)line);
    put_text(" ");
    put_text(expression);
    put_text("\n");
}

int lpn_check_end(void)
{
    put_text("lpn-test:END ");
    put_decimal((unsigned)failed_cases);
    put_text("\n");
    if (check_board->exit != NULL) {
        check_board->exit(failed_cases);
    }
    return failed_cases;
}
