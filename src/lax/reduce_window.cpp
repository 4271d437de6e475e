// lax.reduce_window (max, min, sum) over every dimension, with XLA's padding semantics, and VJPs:
// max/min route each cotangent to the first extreme element of its window (XLA's
// select_and_scatter with ge/le, which never selects padding); sum scatters it to every element.
//
// Trailing dimensions with window 1, stride 1 and no padding (the channels of a pooling) form
// a contiguous "lane" that the inner loops run over, so they vectorize.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "lax/reduce_window_kernels.hpp"
#include "lax/window.hpp"
#include "loom/lax.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::lax {

using namespace rw;  // NOLINT(google-build-using-namespace): this op's private kernels
using win::ints_str;

namespace {

// ---- the VJP's kernels, each a primitive so that reduce_window differentiates to any order --

using Positions = std::shared_ptr<const std::vector<std::int64_t>>;
Array select_gather(const Array& u, const Positions& sel, const Shape& gy_shape);

// dx[sel[i]] += gy[i]: the VJP of max/min (sel: the flat operand position of each output
// element's selected extreme, -1 for a window of padding only). Linear in gy; its own VJP
// gathers at the same positions (the selection is piecewise constant in x).
Array select_scatter(const Array& gy, const Positions& sel, const Shape& x_shape) {
  Array dx = Array::empty(x_shape, gy.dtype());
  ::loom::detail::dispatch_float(gy.dtype(), "reduce_window", [&]<typename T>() {
    T* d = dx.mutable_data<T>();
    std::memset(d, 0, dx.nbytes());
    const T* gp = gy.data<T>();
    for (std::size_t i = 0; i < sel->size(); ++i) {
      if ((*sel)[i] >= 0) d[(*sel)[i]] += gp[i];
    }
  });
  static constexpr ::loom::detail::Primitive kScatter{.name = "reduce_window_select_scatter",
                                                      .forward = ::loom::detail::Forward::linear};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kScatter, dx, {&gy},
        [sel, x_shape](const std::vector<Array>& in) {
          return select_scatter(in[0], sel, x_shape);
        },
        [sel, gy_shape = gy.shape()](const Array& u, const Array&) {
          return std::vector<Array>{select_gather(u, sel, gy_shape)};
        });
  }
  return dx;
}

// out[i] = u[sel[i]] (0 where sel[i] < 0): the transpose of select_scatter.
Array select_gather(const Array& u, const Positions& sel, const Shape& gy_shape) {
  Array out = Array::empty(gy_shape, u.dtype());
  ::loom::detail::dispatch_float(u.dtype(), "reduce_window", [&]<typename T>() {
    T* o = out.mutable_data<T>();
    const T* up = u.data<T>();
    for (std::size_t i = 0; i < sel->size(); ++i) o[i] = (*sel)[i] >= 0 ? up[(*sel)[i]] : T(0);
  });
  static constexpr ::loom::detail::Primitive kGather{.name = "reduce_window_select_gather",
                                                     .forward = ::loom::detail::Forward::linear};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kGather, out, {&u},
        [sel, gy_shape](const std::vector<Array>& in) {
          return select_gather(in[0], sel, gy_shape);
        },
        [sel, x_shape = u.shape()](const Array& v, const Array&) {
          return std::vector<Array>{select_scatter(v, sel, x_shape)};
        });
  }
  return out;
}

// select_scatter with the positions selected from x by this very call: the max/min VJP as a jit
// or vmap capture records it (a primitive of gy and x), so that a replay or a batch selects
// from its own x rather than from the traced one. Constant in x; linear in gy.
Array select_scatter_from(const Array& gy, const Array& x,
                          const std::shared_ptr<const WindowGeom>& gp, ReduceOp op,
                          const std::vector<std::int64_t>& window,
                          const std::vector<std::int64_t>& strides, const Padding& padding) {
  auto sel = std::make_shared<std::vector<std::int64_t>>(std::size_t(gy.size()));
  Array dx = Array::empty(x.shape(), gy.dtype());
  ::loom::detail::dispatch_float(x.dtype(), "reduce_window", [&]<typename T>() {
    if (gy.size() > 0) select_positions<T>(*gp, op, x.data<T>(), sel->data());
    T* d = dx.mutable_data<T>();
    std::memset(d, 0, dx.nbytes());
    const T* gv = gy.data<T>();
    for (std::size_t i = 0; i < sel->size(); ++i) {
      if ((*sel)[i] >= 0) d[(*sel)[i]] += gv[i];
    }
  });
  static constexpr ::loom::detail::Primitive kScatterFrom{.name = "reduce_window_select_scatter"};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kScatterFrom, dx, {&gy, &x},
        [gp, op, window, strides, padding](const std::vector<Array>& in) {
          return select_scatter_from(in[0], in[1], gp, op, window, strides, padding);
        },
        [sel = Positions(sel), gy_shape = gy.shape()](const Array& u, const Array&) {
          return std::vector<Array>{select_gather(u, sel, gy_shape), Array()};
        },
        // As reduce_window's rule: the batch is one more axis with a window of 1; a shared gy or
        // x is broadcast along it (each example selects from its own x).
        [op, window, strides, padding](const std::vector<Array>& in,
                                       const std::vector<bool>& batched) {
          const std::int64_t size = in[batched[0] ? 0 : 1].shape()[0];
          auto along = [size](const Array& a, bool b) {
            if (b) return a;
            Shape s = a.shape();
            s.insert(0, size);
            return numpy::broadcast_to(numpy::expand_dims(a, {0}), s);
          };
          const Array gyb = along(in[0], batched[0]), xb = along(in[1], batched[1]);
          std::vector<std::int64_t> w{1}, s{1};
          w.insert(w.end(), window.begin(), window.end());
          s.insert(s.end(), strides.begin(), strides.end());
          Padding p = padding;
          if (p.kind == Padding::Kind::explicit_pairs) p.pairs.insert(p.pairs.begin(), {0, 0});
          const auto pads = win::resolve_padding("reduce_window", p, xb.shape().to_vector(), w, s);
          return select_scatter_from(
              gyb, xb, std::make_shared<const WindowGeom>(make_geom(xb.shape(), w, s, pads)), op, w,
              s, p);
        });
  }
  return dx;
}

}  // namespace

Array reduce_window(const Array& x, ReduceOp op, const std::vector<std::int64_t>& window,
                    const std::vector<std::int64_t>& strides, const Padding& padding) {
  ::loom::detail::check_valid(x, "reduce_window");
  const std::string who = std::string("reduce_window(") + op_name(op) + "): operand " +
                          x.shape().str() + " " + dtype_name(x.dtype()) + ", window " +
                          ints_str(window) + ", strides " + ints_str(strides);
  const int nd = x.ndim();
  check_window(who, nd, window, strides);
  if (x.dtype() == DType::bool_) {
    throw Error(who + ": bool operands are not supported; cast to int32 first");
  }
  const std::vector<std::int64_t> in = x.shape().to_vector();
  const auto pads = win::resolve_padding("reduce_window", padding, in, window, strides);
  const WindowGeom g = make_geom(x.shape(), window, strides, pads);
  Shape out_shape;
  for (int d = 0; d < g.r; ++d) out_shape.push_back(g.out[std::size_t(d)]);
  for (int d = g.r; d < nd; ++d) out_shape.push_back(x.shape()[d]);
  Array out = Array::empty(out_shape, x.dtype());
  ::loom::detail::dispatch(x.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      if (out.size() > 0) forward<T>(g, op, x.data<T>(), out.mutable_data<T>());
    }
  });
  // A window sum is linear (its tangent is the window sum of the tangent); max/min keep the
  // derived rule.
  static constexpr ::loom::detail::Primitive kReduceWindowSum{
      .name = "reduce_window", .forward = ::loom::detail::Forward::linear};
  static constexpr ::loom::detail::Primitive kReduceWindow{.name = "reduce_window"};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        op == ReduceOp::sum ? kReduceWindowSum : kReduceWindow, out, {&x},
        [op, window, strides, padding](const std::vector<Array>& in) {
          return reduce_window(in[0], op, window, strides, padding);
        },
        [gp = std::make_shared<const WindowGeom>(g), op, x, window, strides, padding](
            const Array& gy0, const Array&) {
          const Array gy = gy0.dtype() == x.dtype() ? gy0 : gy0.astype(x.dtype());
          if (op == ReduceOp::sum) {
            return std::vector<Array>{
                window_sum_transpose(gy, gp, x.shape(), window, strides, padding)};
          }
          if (::loom::detail::current_capture() != nullptr)
            return std::vector<Array>{select_scatter_from(gy, x, gp, op, window, strides, padding)};
          auto sel = std::make_shared<std::vector<std::int64_t>>(std::size_t(gy.size()));
          ::loom::detail::dispatch_float(x.dtype(), "reduce_window", [&]<typename T>() {
            if (gy.size() > 0) select_positions<T>(*gp, op, x.data<T>(), sel->data());
          });
          return std::vector<Array>{select_scatter(gy, sel, x.shape())};
        },
        // The batch is one more axis with a window of 1 (no padding, stride 1).
        [op, window, strides, padding](const std::vector<Array>& in, const std::vector<bool>&) {
          std::vector<std::int64_t> w{1}, s{1};
          w.insert(w.end(), window.begin(), window.end());
          s.insert(s.end(), strides.begin(), strides.end());
          Padding p = padding;
          if (p.kind == Padding::Kind::explicit_pairs) p.pairs.insert(p.pairs.begin(), {0, 0});
          return reduce_window(in[0], op, w, s, p);
        });
  }
  return out;
}

}  // namespace loom::lax
