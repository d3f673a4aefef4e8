/*
 * The measured code of the icount test firmware, in assembly so that every
 * executed instruction is known (see main.c for the expected counts).
 */
    .syntax unified
    .cpu cortex-m4
    .thumb
    .text

/* The markers: the plugin records the count when execution reaches them. */
    .global lpn_mark_begin
    .type lpn_mark_begin, %function
    .thumb_func
lpn_mark_begin:
    bx lr

    .global lpn_mark_end
    .type lpn_mark_end, %function
    .thumb_func
lpn_mark_end:
    bx lr

/* busy_loop(n): 2 instructions per iteration, n >= 1, plus the return. */
    .global busy_loop
    .type busy_loop, %function
    .thumb_func
busy_loop:
1:  subs r0, r0, #1
    bne 1b
    bx lr

/* run_marks(): an empty pair, the loop of LOOP_A twice, the loop of LOOP_B.
 * Between lpn_mark_begin's count and lpn_mark_end's:
 *   empty pair:  bx lr (begin), bl lpn_mark_end                       = 2
 *   loop of n:   bx lr, movs, bl busy_loop, 2n, bx lr, bl lpn_mark_end = 2n + 5 */
    .global run_marks
    .type run_marks, %function
    .thumb_func
run_marks:
    push {r4, lr}
    bl lpn_mark_begin
    bl lpn_mark_end

    bl lpn_mark_begin
    movs r0, #LOOP_A
    bl busy_loop
    bl lpn_mark_end

    bl lpn_mark_begin
    movs r0, #LOOP_A
    bl busy_loop
    bl lpn_mark_end

    bl lpn_mark_begin
    movs r0, #LOOP_B
    bl busy_loop
    bl lpn_mark_end
    pop {r4, pc}
