// SPDX-License-Identifier: MPL-2.0
// SKIT_CPU_RELAX(): one step of a busy-wait loop (the CPU's spin hint).
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>
#define SKIT_CPU_RELAX() _mm_pause()
#else
#define SKIT_CPU_RELAX() ((void)0)
#endif
