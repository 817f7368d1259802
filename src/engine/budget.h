/*
 * budget.h: the adaptive step budget, a PID controller that grows or shrinks
 * the scheduler's per-step token budget to hold the step time (which is the
 * inter-token gap of every decoding sequence) near a target.
 *
 * Model of use: ig_budget_pid_init once, then after every step that ran,
 * ig_budget_pid_update(step_ms) returns the budget for the next step. Pure
 * arithmetic on plain data: no time source, no allocation, so tests feed it
 * synthetic step times. One thread (the engine thread).
 *
 * Control law, with e = (target - step_ms) / target (relative error, > 0
 * when there is room to do more per step):
 *     I <- clamp(I + e, -I_MAX, I_MAX)             (anti-windup)
 *     budget <- clamp(budget + (KP*e + KI*I + KD*(e - e_prev)) * max_tokens,
 *                     min_tokens, max_tokens)
 * The output is incremental (a velocity form), so the budget moves by at
 * most a fraction of its range per step and holds still at the target.
 */
#ifndef IG_ENGINE_BUDGET_H
#define IG_ENGINE_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ig_budget_pid {
    double target_ms;   /* wanted step time, ms (> 0) */
    int32_t min_tokens; /* lowest budget, tokens (>= 1) */
    int32_t max_tokens; /* highest budget, tokens (>= min_tokens) */
    double budget;      /* current budget, tokens (continuous) */
    double integral;    /* I term state (relative error summed over steps) */
    double error;       /* the last relative error */
    bool has_error;     /* error holds a value (for the D term) */
} ig_budget_pid;

/* Start at max_tokens (full throughput) with no history. Bounds are fixed up
 * (min >= 1, max >= min); target_ms <= 0 is treated as 1 ms. */
void ig_budget_pid_init(ig_budget_pid *p, double target_ms, int32_t min_tokens, int32_t max_tokens);

/* Feed one step's duration; returns the budget for the next step. */
int32_t ig_budget_pid_update(ig_budget_pid *p, double step_ms);

#endif
