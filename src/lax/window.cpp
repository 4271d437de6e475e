// Window geometry shared by conv_general_dilated and reduce_window (see window.hpp).
#include "lax/window.hpp"

#include <algorithm>

namespace loom::lax::win {

std::string ints_str(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  if (v.size() == 1) s += ",";
  return s + ")";
}

std::vector<std::pair<std::int64_t, std::int64_t>> resolve_padding(
    const char* op, const Padding& padding, const std::vector<std::int64_t>& in,
    const std::vector<std::int64_t>& window, const std::vector<std::int64_t>& strides) {
  const std::size_t n = in.size();
  check_window_arguments(op, "window", window);
  check_window_arguments(op, "strides", strides);
  std::vector<std::pair<std::int64_t, std::int64_t>> pads(n, {0, 0});
  switch (padding.kind) {
    case Padding::Kind::valid:
      break;
    case Padding::Kind::same:
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t out = (in[i] + strides[i] - 1) / strides[i];
        const std::int64_t total =
            std::max<std::int64_t>((out - 1) * strides[i] + window[i] - in[i], 0);
        pads[i] = {total / 2, total - total / 2};
      }
      break;
    case Padding::Kind::explicit_pairs:
      if (padding.pairs.size() != n) {
        throw Error(std::string(op) + ": explicit padding has " +
                    std::to_string(padding.pairs.size()) + " (low, high) pairs but " +
                    std::to_string(n) + " windowed dimensions " + ints_str(in) + " need one each");
      }
      for (const auto& [lo, hi] : padding.pairs) {
        if (lo < -kMaxWindowArgument || lo > kMaxWindowArgument || hi < -kMaxWindowArgument ||
            hi > kMaxWindowArgument) {
          throw Error(std::string(op) + ": explicit padding (" + std::to_string(lo) + ", " +
                      std::to_string(hi) + ") is out of range (|padding| <= 2^31)");
        }
      }
      pads = padding.pairs;
      break;
  }
  return pads;
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* op) {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r > (std::int64_t{1} << 40)) {
    throw Error(std::string(op) + ": window geometry too large (" + std::to_string(a) + " x " +
                std::to_string(b) + ")");
  }
  return r;
}

void check_window_arguments(const std::string& who, const char* what,
                            const std::vector<std::int64_t>& v) {
  for (std::int64_t x : v) {
    if (x < 1 || x > kMaxWindowArgument) {
      throw Error(who + ": " + what + " " + ints_str(v) + " must be positive and at most 2^31");
    }
  }
}

std::int64_t window_out_size(std::int64_t in_dilated, std::int64_t lo, std::int64_t hi,
                             std::int64_t window_dilated, std::int64_t stride) {
  const std::int64_t span = in_dilated + lo + hi - window_dilated;
  return span < 0 ? 0 : span / stride + 1;
}

std::vector<std::int64_t> tap_table(std::int64_t in, std::int64_t out, std::int64_t k,
                                    std::int64_t stride, std::int64_t lo, std::int64_t lhs_dil,
                                    std::int64_t rhs_dil) {
  const std::int64_t in_dilated = in == 0 ? 0 : checked_mul(in - 1, lhs_dil, "window") + 1;
  std::vector<std::int64_t> t(static_cast<std::size_t>(checked_mul(out, k, "window")), -1);
  for (std::int64_t o = 0; o < out; ++o) {
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t p = o * stride - lo + j * rhs_dil;
      if (p >= 0 && p < in_dilated && p % lhs_dil == 0)
        t[static_cast<std::size_t>(o * k + j)] = p / lhs_dil;
    }
  }
  return t;
}

}  // namespace loom::lax::win
