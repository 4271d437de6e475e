// Private: window geometry shared by conv_general_dilated and reduce_window.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loom/lax.hpp"

namespace loom::lax::win {

/// (low, high) padding per dimension from a Padding spec, as XLA/JAX resolve "SAME"/"VALID":
/// out = ceil(in / stride), total = max((out - 1) * stride + window - in, 0), low = total / 2.
std::vector<std::pair<std::int64_t, std::int64_t>> resolve_padding(
    const char* op, const Padding& padding, const std::vector<std::int64_t>& in,
    const std::vector<std::int64_t>& window, const std::vector<std::int64_t>& strides);

/// Output size of one windowed dimension (0 when the window does not fit).
std::int64_t window_out_size(std::int64_t in_dilated, std::int64_t lo, std::int64_t hi,
                             std::int64_t window_dilated, std::int64_t stride);

/// Table t[o * k + j]: the input index read by output o at window tap j, or -1 (padding or a
/// hole of lhs dilation).
std::vector<std::int64_t> tap_table(std::int64_t in, std::int64_t out, std::int64_t k,
                                    std::int64_t stride, std::int64_t lo, std::int64_t lhs_dil,
                                    std::int64_t rhs_dil);

std::string ints_str(const std::vector<std::int64_t>& v);

/// Window sizes, strides, dilations and explicit padding beyond this are refused: no real
/// window is that large, and the bound keeps every geometry product inside int64.
inline constexpr std::int64_t kMaxWindowArgument = std::int64_t{1} << 31;

/// a * b, or a loom::Error naming `op` when it overflows int64.
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* op);

/// Throws unless 1 <= v <= kMaxWindowArgument for every entry (`what`: "window_strides", ...).
void check_window_arguments(const std::string& who, const char* what,
                            const std::vector<std::int64_t>& v);

}  // namespace loom::lax::win
