// jax.numpy-style indexing: slice, index, pad, take, take_along_axis, one_hot (declared in
// loom/numpy/manipulation.hpp); their kernels and VJPs, on the strided machinery of
// numpy/strided.hpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "detail/batching.hpp"
#include "detail/dispatch.hpp"
#include "detail/host_read.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"
#include "numpy/strided.hpp"

namespace loom::numpy {
using namespace strided;  // NOLINT(google-build-using-namespace): the shared kernels
using In = std::vector<Array>;

// ---- indexing -----------------------------------------------------------------------------

Array slice(const Array& x, const std::vector<Slice>& slices) {
  detail::check_valid(x, "slice");
  if (static_cast<int>(slices.size()) > x.ndim()) {
    throw Error("slice: too many indices for array: array is " + std::to_string(x.ndim()) +
                "-dimensional (shape " + x.shape().str() + "), but " +
                std::to_string(slices.size()) + " were indexed");
  }
  const Dims xs = contiguous_strides(x.shape());
  Shape out_shape = x.shape();
  Dims ss = xs;
  std::int64_t offset = 0;
  bool whole = true;
  for (std::size_t d = 0; d < slices.size(); ++d) {
    const Slice& sl = slices[d];
    const std::int64_t n = x.shape()[static_cast<int>(d)];
    if (sl.step == 0) {
      throw Error("slice: slice step cannot be zero (axis " + std::to_string(d) + " of shape " +
                  x.shape().str() + ")");
    }
    // A step longer than the axis takes at most one element: clamping it changes nothing but
    // keeps -step and stride * step inside int64.
    const std::int64_t max_step = std::max<std::int64_t>(n, 1);
    const std::int64_t step = sl.step > max_step    ? max_step
                              : sl.step < -max_step ? -max_step
                                                    : sl.step;
    // Python's PySlice_AdjustIndices.
    auto adjust = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
      if (!v) return dflt;
      std::int64_t i = *v;
      if (i < 0) {
        i += n;
        if (i < 0) i = step < 0 ? -1 : 0;
      } else if (i >= n) {
        i = step < 0 ? n - 1 : n;
      }
      return i;
    };
    const std::int64_t start = adjust(sl.start, step < 0 ? n - 1 : 0);
    const std::int64_t stop = adjust(sl.stop, step < 0 ? -1 : n);
    std::int64_t len = 0;
    if (step > 0 && start < stop) len = (stop - start - 1) / step + 1;
    if (step < 0 && stop < start) len = (start - stop - 1) / (-step) + 1;
    out_shape[static_cast<int>(d)] = len;
    if (len > 0) offset += start * xs[d];
    ss[d] = xs[d] * step;
    if (len != n || (step != 1 && n > 1)) whole = false;
  }
  if (whole) return x;
  Array out = Array::empty(out_shape, x.dtype());
  strided_copy(x, offset, ss, out, 0, contiguous_strides(out_shape), out_shape);
  static constexpr detail::Primitive kSlice{.name = "slice", .forward = detail::Forward::linear};
  if (detail::transforming())
    detail::bind(
        kSlice, out, {&x}, [slices](const In& in) { return slice(in[0], slices); },
        [in_shape = x.shape(), offset, ss](const Array& g, const Array&) {
          return std::vector<Array>{strided_scatter(g, in_shape, offset, ss)};
        },
        [slices](const In& in, const std::vector<bool>&) {
          std::vector<Slice> s{Slice{}};
          s.insert(s.end(), slices.begin(), slices.end());
          return slice(in[0], s);
        });
  return out;
}

Array index(const Array& x, std::int64_t i, int axis) {
  detail::check_valid(x, "index");
  const int ax = normalize_axis(axis, x.ndim(), "index", x.shape());
  const std::int64_t n = x.shape()[ax];
  if (i < -n || i >= n) {
    throw Error("index: index " + std::to_string(i) + " is out of bounds for axis " +
                std::to_string(ax) + " with size " + std::to_string(n) + " (shape " +
                x.shape().str() + ")");
  }
  if (i < 0) i += n;
  Array part = slice_axis(x, ax, i, i + 1);
  return squeeze(part, ax);
}

Array pad(const Array& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& pad_width,
          double constant_value) {
  detail::check_valid(x, "pad");
  const int nd = x.ndim();
  if (!(pad_width.size() == 1 || static_cast<int>(pad_width.size()) == nd)) {
    throw Error("pad: pad_width has " + std::to_string(pad_width.size()) +
                " (before, after) pairs; expected 1 or " + std::to_string(nd) +
                " for an array of shape " + x.shape().str());
  }
  Shape out_shape = x.shape();
  std::vector<std::int64_t> before(static_cast<std::size_t>(nd), 0);
  bool any = false;
  for (int d = 0; d < nd; ++d) {
    const auto& pw = pad_width.size() == 1 ? pad_width[0] : pad_width[std::size_t(d)];
    if (pw.first < 0 || pw.second < 0) {
      throw Error("pad: pad widths must be non-negative, got (" + std::to_string(pw.first) + ", " +
                  std::to_string(pw.second) + ") for axis " + std::to_string(d) + " of shape " +
                  x.shape().str());
    }
    before[std::size_t(d)] = pw.first;
    if (__builtin_add_overflow(out_shape[d], pw.first, &out_shape[d]) ||
        __builtin_add_overflow(out_shape[d], pw.second, &out_shape[d])) {
      throw Error("pad: pad widths (" + std::to_string(pw.first) + ", " +
                  std::to_string(pw.second) + ") overflow axis " + std::to_string(d) +
                  " of shape " + x.shape().str());
    }
    any = any || pw.first || pw.second;
  }
  if (!any) return x;
  Array out = full(out_shape, constant_value, x.dtype());
  const Dims ds = contiguous_strides(out_shape);
  std::int64_t offset = 0;
  for (int d = 0; d < nd; ++d) offset += before[std::size_t(d)] * ds[std::size_t(d)];
  strided_copy(x, 0, contiguous_strides(x.shape()), out, offset, ds, x.shape());
  // Linear in x only when the padding is zero (otherwise affine: the derived rule).
  static constexpr detail::Primitive kPad{.name = "pad", .forward = detail::Forward::linear};
  static constexpr detail::Primitive kPadConstant{.name = "pad"};
  if (detail::transforming())
    detail::bind(
        constant_value == 0 ? kPad : kPadConstant, out, {&x},
        [pad_width, constant_value](const In& in) { return pad(in[0], pad_width, constant_value); },
        [in_shape = x.shape(), offset, ds](const Array& g, const Array&) {
          return std::vector<Array>{strided_gather(g, offset, ds, in_shape)};
        },
        [pad_width, constant_value](const In& in, const std::vector<bool>&) {
          const int nd = in[0].ndim() - 1;
          std::vector<std::pair<std::int64_t, std::int64_t>> pw{{0, 0}};
          for (int d = 0; d < nd; ++d)
            pw.push_back(pad_width.size() == 1 ? pad_width[0] : pad_width[std::size_t(d)]);
          return pad(in[0], pw, constant_value);
        });
  return out;
}

Array take(const Array& x, const Array& indices, std::optional<int> axis) {
  detail::check_valid(x, "take");
  check_integer_indices(indices, "take");
  if (!axis) return take(ravel(x), indices, 0);
  const int ax = normalize_axis(*axis, x.ndim(), "take", x.shape());
  const std::int64_t n = x.shape()[ax];
  const std::vector<std::int64_t> idx = checked_indices(indices, n, "take", ax, x.shape());
  Shape out_shape;
  for (int d = 0; d < ax; ++d) out_shape.push_back(x.shape()[d]);
  for (std::int64_t e : indices.shape()) out_shape.push_back(e);
  for (int d = ax + 1; d < x.ndim(); ++d) out_shape.push_back(x.shape()[d]);
  std::int64_t O = 1, I = 1;
  for (int d = 0; d < ax; ++d) O *= x.shape()[d];
  for (int d = ax + 1; d < x.ndim(); ++d) I *= x.shape()[d];
  const std::int64_t K = static_cast<std::int64_t>(idx.size());
  Array out = Array::empty(out_shape, x.dtype());
  const std::size_t row = static_cast<std::size_t>(I) * itemsize(x.dtype());
  const auto* src = static_cast<const unsigned char*>(x.raw_data());
  auto* dst = static_cast<unsigned char*>(out.raw_mutable_data());
  for (std::int64_t o = 0; o < O; ++o) {
    for (std::int64_t k = 0; k < K; ++k) {
      if (row) {
        std::memcpy(dst + std::size_t(o * K + k) * row,
                    src + std::size_t(o * n + idx[std::size_t(k)]) * row, row);
      }
    }
  }
  static constexpr detail::Primitive kTake{.name = "take", .forward = detail::Forward::linear};
  if (detail::transforming())
    detail::bind(
        kTake, out, {&x, &indices}, [ax](const In& in) { return take(in[0], in[1], ax); },
        [in_shape = x.shape(), idx, O, n, I, indices, ax](const Array& g, const Array&) {
          if (detail::current_capture() != nullptr)
            return std::vector<Array>{scatter_add_take_from(g, indices, in_shape, ax), Array()};
          return std::vector<Array>{scatter_add_take(g, in_shape, idx, O, n, I), Array()};
        },
        [ax](const In& in, const std::vector<bool>& batched) {
          if (!batched[1]) return take(in[0], in[1], ax + 1);
          // Batched indices into a shared array: the batch lands at `ax`; move it to the front.
          if (!batched[0]) return moveaxis(take(in[0], in[1], ax), ax, 0);
          return Array();  // both batched: per example
        });
  return out;
}

Array take_along_axis(const Array& x, const Array& indices, int axis) {
  detail::check_valid(x, "take_along_axis");
  check_integer_indices(indices, "take_along_axis");
  if (indices.ndim() != x.ndim()) {
    throw Error("take_along_axis: indices and array must have the same number of dimensions; got " +
                indices.shape().str() + " and " + x.shape().str());
  }
  const int ax = normalize_axis(axis, x.ndim(), "take_along_axis", x.shape());
  // Every axis but `axis` broadcasts between x and indices.
  Shape xs = x.shape(), is = indices.shape();
  xs[ax] = 1;
  is[ax] = 1;
  const Shape common = broadcast_shapes(xs, is, "take_along_axis");
  Shape x_target = common, i_target = common;
  x_target[ax] = x.shape()[ax];
  i_target[ax] = indices.shape()[ax];
  const Array xb = broadcast_to(x, x_target);
  const Array ib = broadcast_to(indices, i_target);
  const std::int64_t n = x_target[ax], K = i_target[ax];
  const std::vector<std::int64_t> idx = checked_indices(ib, n, "take_along_axis", ax, x.shape());
  std::int64_t O = 1, I = 1;
  for (int d = 0; d < ax; ++d) O *= common[d];
  for (int d = ax + 1; d < common.size(); ++d) I *= common[d];
  Array out = Array::empty(i_target, x.dtype());
  // Element offsets into xb, shared by the forward gather and the backward scatter.
  std::vector<std::int64_t> src(idx.size());
  for (std::int64_t o = 0; o < O; ++o) {
    for (std::int64_t k = 0; k < K; ++k) {
      for (std::int64_t i = 0; i < I; ++i) {
        const std::size_t j = std::size_t((o * K + k) * I + i);
        src[j] = (o * n + idx[j]) * I + i;
      }
    }
  }
  detail::dispatch(x.dtype(), [&]<typename T>() {
    const T* xp = xb.data<T>();
    T* op = out.mutable_data<T>();
    for (std::size_t j = 0; j < src.size(); ++j) op[j] = xp[src[j]];
  });
  static constexpr detail::Primitive kTakeAlongAxis{.name = "take_along_axis",
                                                    .forward = detail::Forward::linear};
  if (detail::transforming())
    detail::bind(
        kTakeAlongAxis, out, {&x, &indices},
        [ax](const In& in) { return take_along_axis(in[0], in[1], ax); },
        [shape = x_target, src, x_shape = x.shape(), indices, i_target, n, ax](const Array& g,
                                                                               const Array&) {
          if (detail::current_capture() != nullptr) {
            // Under jit/vmap the scatter must follow the indices it is replayed with, not the
            // offsets traced here: gx[.., j, ..] = sum_k g[.., k, ..] * (indices[.., k, ..] == j),
            // from bound ops (one_hot, multiply, sum), exact since each term is g or 0.
            const Array hot = one_hot(broadcast_to(indices, i_target), n, g.dtype());
            const Array gx = moveaxis(sum(multiply(expand_dims(g, -1), hot), ax), -1, ax);
            return std::vector<Array>{detail::unbroadcast(gx, x_shape), Array()};
          }
          // x was broadcast to `shape` first: the scatter's sum comes back through unbroadcast.
          return std::vector<Array>{detail::unbroadcast(scatter_add_flat(g, shape, src), x_shape),
                                    Array()};
        },
        [ax](const In& in, const std::vector<bool>& batched) {
          const std::int64_t size = detail::batch_size(in, batched);
          return take_along_axis(detail::with_batch(in[0], batched[0], size),
                                 detail::with_batch(in[1], batched[1], size), ax + 1);
        });
  return out;
}

Array one_hot(const Array& indices, std::int64_t num_classes, DType dtype) {
  detail::check_valid(indices, "one_hot");
  if (num_classes < 0) {
    throw Error("one_hot: num_classes must be non-negative, got " + std::to_string(num_classes));
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(num_classes);
  Array out = zeros(out_shape, dtype);
  // As jax.nn.one_hot: row k is (indices == arange(num_classes)); anything else is all zeros.
  const std::vector<double> v = [&] {
    loom::detail::KernelRead reading;
    return indices.to_vector<double>();
  }();
  detail::dispatch(dtype, [&]<typename T>() {
    T* p = out.mutable_data<T>();
    for (std::size_t j = 0; j < v.size(); ++j) {
      if (v[j] >= 0 && v[j] < static_cast<double>(num_classes) && v[j] == std::floor(v[j])) {
        p[static_cast<std::int64_t>(j) * num_classes + static_cast<std::int64_t>(v[j])] = T(1);
      }
    }
  });
  static constexpr detail::Primitive kOneHot{.name = "one_hot"};
  if (detail::transforming())
    detail::bind(
        kOneHot, out, {&indices},
        [num_classes, dtype](const In& in) { return one_hot(in[0], num_classes, dtype); }, nullptr,
        [num_classes, dtype](const In& in, const std::vector<bool>&) {
          return one_hot(in[0], num_classes, dtype);  // the class axis is last either way
        });
  return out;
}

}  // namespace loom::numpy
