// The window sum's transpose (reduce_window(sum)'s VJP) and lax::reduce_window_mean, the
// one-pass window average (avg_pool), which shares it.
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "lax/reduce_window_kernels.hpp"

namespace loom::lax {
namespace rw {

// Its own VJP is the window sum (or average) again.
Array window_sum_transpose(const Array& gy, const std::shared_ptr<const WindowGeom>& g,
                           const Shape& x_shape, const std::vector<std::int64_t>& window,
                           const std::vector<std::int64_t>& strides, const Padding& padding,
                           double divisor) {
  Array dx = Array::empty(x_shape, gy.dtype());
  ::loom::detail::dispatch_float(gy.dtype(), "reduce_window", [&]<typename T>() {
    T* d = dx.mutable_data<T>();
    std::memset(d, 0, dx.nbytes());
    if (gy.size() > 0) sum_backward<T>(*g, gy.data<T>(), d, divisor);
  });
  static constexpr ::loom::detail::Primitive kSumT{.name = "reduce_window_sum_transpose",
                                                   .forward = ::loom::detail::Forward::linear};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kSumT, dx, {&gy},
        [g, x_shape, window, strides, padding, divisor](const std::vector<Array>& in) {
          return window_sum_transpose(in[0], g, x_shape, window, strides, padding, divisor);
        },
        [window, strides, padding, divisor](const Array& u, const Array&) {
          return std::vector<Array>{divisor == 1.0
                                        ? reduce_window(u, ReduceOp::sum, window, strides, padding)
                                        : reduce_window_mean(u, window, strides, padding)};
        },
        // As reduce_window's rule: the batch is one more axis with a window of 1.
        [x_shape, window, strides, padding, divisor](const std::vector<Array>& in,
                                                     const std::vector<bool>&) {
          Shape xs = x_shape;
          xs.insert(0, in[0].shape()[0]);
          std::vector<std::int64_t> w{1}, s{1};
          w.insert(w.end(), window.begin(), window.end());
          s.insert(s.end(), strides.begin(), strides.end());
          Padding p = padding;
          if (p.kind == Padding::Kind::explicit_pairs) p.pairs.insert(p.pairs.begin(), {0, 0});
          const auto pads = win::resolve_padding("reduce_window", p, xs.to_vector(), w, s);
          return window_sum_transpose(in[0],
                                      std::make_shared<const WindowGeom>(make_geom(xs, w, s, pads)),
                                      xs, w, s, p, divisor);
        });
  }
  return dx;
}

}  // namespace rw

using namespace rw;  // NOLINT(google-build-using-namespace): this op's private kernels
using win::ints_str;

Array reduce_window_mean(const Array& x, const std::vector<std::int64_t>& window,
                         const std::vector<std::int64_t>& strides, const Padding& padding) {
  ::loom::detail::check_valid(x, "reduce_window_mean");
  const std::string who = "reduce_window_mean: operand " + x.shape().str() + " " +
                          dtype_name(x.dtype()) + ", window " + ints_str(window) + ", strides " +
                          ints_str(strides);
  const int nd = x.ndim();
  check_window(who, nd, window, strides);
  if (!is_floating(x.dtype())) throw Error(who + ": expected a floating operand");
  const auto pads =
      win::resolve_padding("reduce_window_mean", padding, x.shape().to_vector(), window, strides);
  const WindowGeom g = make_geom(x.shape(), window, strides, pads);
  const double divisor = double(g.win_count);
  Shape out_shape;
  for (int d = 0; d < g.r; ++d) out_shape.push_back(g.out[std::size_t(d)]);
  for (int d = g.r; d < nd; ++d) out_shape.push_back(x.shape()[d]);
  Array out = Array::empty(out_shape, x.dtype());
  ::loom::detail::dispatch_float(x.dtype(), "reduce_window_mean", [&]<typename T>() {
    if (out.size() > 0) forward<T>(g, ReduceOp::sum, x.data<T>(), out.mutable_data<T>(), divisor);
  });
  static constexpr ::loom::detail::Primitive kMean{.name = "reduce_window_mean",
                                                   .forward = ::loom::detail::Forward::linear};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kMean, out, {&x},
        [window, strides, padding](const std::vector<Array>& in) {
          return reduce_window_mean(in[0], window, strides, padding);
        },
        [gp = std::make_shared<const WindowGeom>(g), x_shape = x.shape(), dt = x.dtype(), window,
         strides, padding, divisor](const Array& gy0, const Array&) {
          const Array gy = gy0.dtype() == dt ? gy0 : gy0.astype(dt);
          return std::vector<Array>{
              window_sum_transpose(gy, gp, x_shape, window, strides, padding, divisor)};
        },
        // The batch is one more axis with a window of 1 (the divisor is unchanged).
        [window, strides, padding](const std::vector<Array>& in, const std::vector<bool>&) {
          std::vector<std::int64_t> w{1}, s{1};
          w.insert(w.end(), window.begin(), window.end());
          s.insert(s.end(), strides.begin(), strides.end());
          Padding p = padding;
          if (p.kind == Padding::Kind::explicit_pairs) p.pairs.insert(p.pairs.begin(), {0, 0});
          return reduce_window_mean(in[0], w, s, p);
        });
  }
  return out;
}

}  // namespace loom::lax
