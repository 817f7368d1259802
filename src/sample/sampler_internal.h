/*
 * sampler_internal.h: checks shared by sampler.c and sampler_stages.c, so a
 * parameter is validated the same way whether it comes through
 * ig_sampler_params or a direct ig_sampler_add_*() call. Not public.
 */
#ifndef IG_SAMPLE_SAMPLER_INTERNAL_H
#define IG_SAMPLE_SAMPLER_INTERNAL_H

#include "sample/sampler.h"

/* IG_EINVAL naming the first bad logit_bias entry (id outside [0, n_vocab), NaN). */
ig_status ig__sampler_check_bias(const ig_logit_bias *bias, size_t n_bias, int32_t n_vocab,
                                 ig_error *err);
/* IG_EINVAL naming the first bad penalty field. */
ig_status ig__sampler_check_penalties(int32_t repeat_last_n, float repeat_penalty,
                                      float frequency_penalty, float presence_penalty,
                                      ig_error *err);

#endif
