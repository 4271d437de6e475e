// Private: the fused LayerNorm/RMSNorm kernel over the trailing axes, with its VJP.
#pragma once

#include <cstdint>

#include "loom/array.hpp"

namespace loom::nn::detail {

/// x viewed as (rows, n), statistics and params over the last n elements of each row, all in
/// x's dtype (float32 or float64); scale/bias are (n,) arrays of that dtype or invalid (unused).
/// centred: y = (x - mean) * (rsqrt(max(0, mean(x^2) - mean^2) + eps) * scale) + bias (Flax's
/// fast variance); else (RMSNorm) y = x * (rsqrt(mean(x^2) + eps) * scale). One pass for the
/// statistics, one for the output; differentiable in x, scale and bias.
Array normalize_rows(const Array& x, const Array& scale, const Array& bias, std::int64_t n,
                     double epsilon, bool centred);

}  // namespace loom::nn::detail
