// lax.conv_transpose (jax/_src/lax/convolution.py): padding rules of the transposed conv, the
// optional kernel flip, then conv_general_dilated with lhs_dilation = strides.
#include <algorithm>
#include <optional>
#include <string>

#include "detail/dispatch.hpp"
#include "lax/window.hpp"
#include "loom/lax.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::lax {

Array conv_transpose(const Array& lhs, const Array& rhs, const std::vector<std::int64_t>& strides,
                     const Padding& padding, const std::vector<std::int64_t>& rhs_dilation,
                     bool transpose_kernel) {
  ::loom::detail::check_valid(lhs, "conv_transpose");
  ::loom::detail::check_valid(rhs, "conv_transpose");
  const std::string who = "conv_transpose: lhs " + lhs.shape().str() + ", rhs " +
                          rhs.shape().str() + ", strides " + win::ints_str(strides);
  const int nd = lhs.ndim();
  if (nd < 3 || nd > 5 || rhs.ndim() != nd) {
    throw Error(who +
                ": lhs must be (N, spatial..., C) with 1 to 3 spatial dimensions and rhs "
                "(spatial..., I, O) of the same rank");
  }
  const std::size_t ns = std::size_t(nd - 2);
  if (strides.size() != ns) {
    throw Error(who + ": strides must have one entry per spatial dimension (" + std::to_string(ns) +
                ")");
  }
  const std::vector<std::int64_t> rdil =
      rhs_dilation.empty() ? std::vector<std::int64_t>(ns, 1) : rhs_dilation;
  if (rdil.size() != ns) {
    throw Error(who + ": rhs_dilation " + win::ints_str(rhs_dilation) +
                " must have one entry per spatial dimension (" + std::to_string(ns) + ")");
  }
  win::check_window_arguments(who, "strides", strides);
  win::check_window_arguments(who, "rhs_dilation", rdil);
  std::vector<std::pair<std::int64_t, std::int64_t>> pads;
  if (padding.kind == Padding::Kind::explicit_pairs) {
    if (padding.pairs.size() != ns) {
      throw Error(who + ": explicit padding needs one (low, high) pair per spatial dimension (" +
                  std::to_string(ns) + "), got " + std::to_string(padding.pairs.size()));
    }
    pads = padding.pairs;
  } else {
    for (std::size_t i = 0; i < ns; ++i) {
      const std::int64_t k0 = rhs.shape()[int(i)];
      const std::int64_t k = k0 == 0 ? 0 : win::checked_mul(k0 - 1, rdil[i], who.c_str()) + 1;
      const std::int64_t s = strides[i];
      std::int64_t len = 0, a = 0;
      if (padding.kind == Padding::Kind::same) {
        len = k + s - 2;
        a = s > k - 1 ? k - 1 : (len + 1) / 2;  // ceil(len / 2), len >= 0 here
      } else {
        len = k + s - 2 + std::max<std::int64_t>(k - s, 0);
        a = k - 1;
      }
      pads.emplace_back(a, len - a);
    }
  }
  Array kernel = rhs;
  if (transpose_kernel) {
    std::vector<numpy::Slice> flip(ns, numpy::Slice{std::nullopt, std::nullopt, -1});
    kernel = numpy::swapaxes(numpy::slice(kernel, flip), nd - 2, nd - 1);
  }
  return conv_general_dilated(lhs, kernel, std::vector<std::int64_t>(ns, 1),
                              Padding::explicit_(pads), strides, rdil);
}

}  // namespace loom::lax
