/*
 * test_engine_budget.c: the adaptive step budget's PID controller
 * (src/engine/budget.h), fed synthetic step times: a plant whose step time
 * grows with the budget must settle near the target, bounds must hold, and
 * a fast plant must leave the budget at its maximum.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "engine/budget.h"

/* A toy engine: step time = fixed cost + cost per token. */
static double plant(int32_t budget, double fixed_ms, double per_token_ms) {
    return fixed_ms + per_token_ms * budget;
}

Test(budget, settles_near_the_target) {
    ig_budget_pid p;
    ig_budget_pid_init(&p, 50.0, 8, 512);
    int32_t b = p.max_tokens;
    for (int i = 0; i < 300; i++) b = ig_budget_pid_update(&p, plant(b, 5.0, 0.25));
    /* the budget that gives exactly 50 ms is (50 - 5) / 0.25 = 180 tokens */
    cr_assert_geq(b, 170, "budget %d", b);
    cr_assert_leq(b, 190, "budget %d", b);
    cr_assert_lt(fabs(plant(b, 5.0, 0.25) - 50.0), 3.0);
}

Test(budget, respects_its_bounds) {
    ig_budget_pid p;
    ig_budget_pid_init(&p, 10.0, 16, 256);
    int32_t b = 0;
    for (int i = 0; i < 100; i++) {
        b = ig_budget_pid_update(&p, 1000.0); /* hopelessly slow */
        cr_assert_geq(b, 16);
        cr_assert_leq(b, 256);
    }
    cr_assert_eq(b, 16);
    for (int i = 0; i < 200; i++) b = ig_budget_pid_update(&p, 0.5); /* very fast */
    cr_assert_eq(b, 256);
    b = ig_budget_pid_update(&p, NAN); /* no information: holds still-ish */
    cr_assert_geq(b, 16);
    cr_assert_leq(b, 256);
}

Test(budget, bad_bounds_are_fixed_up) {
    ig_budget_pid p;
    ig_budget_pid_init(&p, 0, 0, -5);
    cr_assert_eq(p.min_tokens, 1);
    cr_assert_eq(p.max_tokens, 1);
    cr_assert_eq(ig_budget_pid_update(&p, 3.0), 1);
}
