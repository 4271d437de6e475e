// Private: conv_general_dilated's compute kernels (im2col + GEMM, oneDNN for float32), on the
// geometry conv.cpp plans. Each writes all of its output.
//
//   lax::conv::Geom g = ...;                          // conv_general_dilated's plan
//   lax::conv::forward<float>(g, x, w, y);            // y = conv(x, w)
//   lax::conv::backward<float>(g, x, w, gy, dx, dw);  // dx and/or dw (nullptr: not wanted)
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "lax/dnnl_conv.hpp"

namespace loom::lax::conv {

struct Geom {
  std::int64_t n = 0, c = 0, o = 0, groups = 1, cg = 0, og = 0;
  std::array<std::int64_t, 3> in{1, 1, 1}, k{1, 1, 1}, out{1, 1, 1};
  std::array<std::vector<std::int64_t>, 3> taps;
  std::int64_t kvol = 1, in_img = 1, out_img = 1;
  bool identity = false;     // im2col would reproduce x (1x1 taps, stride 1, no padding/dilation)
  bool lhs_dilated = false;  // oneDNN has no lhs dilation: such convs stay on im2col
  dnnl_conv::Geometry dnnl;  // the same conv for oneDNN (float32)
  std::int64_t kc() const { return kvol * c; }
  std::int64_t rows() const { return n * out_img; }
};

/// y (n, out..., o) = conv(x, w); when bias is non-null, y + bias (o) with the rounding of a
/// separate add (the conv's float result, then + bias).
template <typename T>
void forward(const Geom& g, const T* x, const T* w, T* out, const T* bias = nullptr);

/// dx (when non-null) and dw (when non-null) from the output cotangent gy.
template <typename T>
void backward(const Geom& g, const T* x, const T* w, const T* gy, T* dx, T* dw);

}  // namespace loom::lax::conv
