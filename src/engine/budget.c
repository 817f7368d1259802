/*
 * budget.c: the adaptive step budget's PID controller (see budget.h).
 *
 * Gains: chosen so that a step twice as slow as the target (e = -1) takes
 * about a third of the range off the budget at once, and a persistent error
 * keeps moving it through the I term; D damps the reaction to one slow step.
 * They are not tuned on a real workload yet.
 */
#include "engine/budget.h"

#define KP    0.30
#define KI    0.05
#define KD    0.10
#define I_MAX 5.0

static double clampd(double x, double lo, double hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

void ig_budget_pid_init(ig_budget_pid *p, double target_ms, int32_t min_tokens,
                        int32_t max_tokens) {
    if (min_tokens < 1) min_tokens = 1;
    if (max_tokens < min_tokens) max_tokens = min_tokens;
    *p = (ig_budget_pid){.target_ms = target_ms > 0 ? target_ms : 1.0,
                         .min_tokens = min_tokens,
                         .max_tokens = max_tokens,
                         .budget = max_tokens};
}

int32_t ig_budget_pid_update(ig_budget_pid *p, double step_ms) {
    if (!(step_ms >= 0)) step_ms = p->target_ms; /* NaN or negative: no information */
    double e = clampd((p->target_ms - step_ms) / p->target_ms, -10.0, 1.0);
    p->integral = clampd(p->integral + e, -I_MAX, I_MAX);
    double d = p->has_error ? e - p->error : 0.0;
    p->error = e;
    p->has_error = true;
    double delta = (KP * e + KI * p->integral + KD * d) * p->max_tokens;
    p->budget = clampd(p->budget + delta, p->min_tokens, p->max_tokens);
    return (int32_t)(p->budget + 0.5);
}
