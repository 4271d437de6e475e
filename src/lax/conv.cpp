// lax.conv_general_dilated in Flax's layout (NHWC input, HWIO kernel): the plan (validation,
// padding, geometry) and the primitives; the kernels are in conv_kernels.cpp.
//
// VJP: d(kernel) = filter(x, gy), d(input) = data(gy, w), each itself a primitive.
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "lax/conv_kernels.hpp"
#include "lax/window.hpp"
#include "loom/lax.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::lax {
namespace {

using win::ints_str;

// ---- the VJP's kernels as primitives --------------------------------------------------------
// y = conv(x, w) is bilinear, and so are its two backward kernels dx = data(gy, w) and
// dw = filter(x, gy); the VJP of each of the three is made of the other two (and itself), so
// conv_general_dilated differentiates to any order through the same fast kernels.

struct ConvPlan {
  conv::Geom g;
  Shape x_shape, w_shape, y_shape;
};
using PlanPtr = std::shared_ptr<const ConvPlan>;

Array conv_data(const Array& gy, const Array& w, const PlanPtr& p);
Array conv_filter(const Array& x, const Array& gy, const PlanPtr& p);

// The VJP of y = conv(x, w) at cotangent gy; a cotangent only for inputs with history.
std::vector<Array> conv_vjp(const Array& x, const Array& w, const Array& gy, const PlanPtr& p) {
  return {x.node() ? conv_data(gy, w, p) : Array(), w.node() ? conv_filter(x, gy, p) : Array()};
}

Array conv_apply(const Array& x, const Array& w, const PlanPtr& p) {
  Array out = Array::empty(p->y_shape, x.dtype());
  if (out.size() > 0) {
    ::loom::detail::dispatch_float(x.dtype(), "conv_general_dilated", [&]<typename T>() {
      if (p->g.kc() == 0) {
        std::memset(out.mutable_data<T>(), 0, out.nbytes());
      } else {
        conv::forward<T>(p->g, x.data<T>(), w.data<T>(), out.mutable_data<T>());
      }
    });
  }
  static constexpr ::loom::detail::Primitive kConvApply{
      .name = "conv_general_dilated", .forward = ::loom::detail::Forward::bilinear};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kConvApply, out, {&x, &w},
        [p](const std::vector<Array>& in) { return conv_apply(in[0], in[1], p); },
        [x, w, p](const Array& gy, const Array&) { return conv_vjp(x, w, gy, p); });
  }
  return out;
}

// dx (x_shape) = data(gy, w), or dw (w_shape) = filter(x, gy), by the backward kernel.
Array conv_backward_kernel(const Array& x, const Array& w, const Array& gy, const PlanPtr& p,
                           bool want_dx) {
  Array d = Array::empty(want_dx ? p->x_shape : p->w_shape, gy.dtype());
  ::loom::detail::dispatch_float(gy.dtype(), "conv_general_dilated", [&]<typename T>() {
    if (p->g.kc() == 0 || p->g.o == 0 || gy.size() == 0) {
      std::memset(d.mutable_data<T>(), 0, d.nbytes());
      return;
    }
    conv::backward<T>(p->g, want_dx ? nullptr : x.data<T>(), want_dx ? w.data<T>() : nullptr,
                      gy.data<T>(), want_dx ? d.mutable_data<T>() : nullptr,
                      want_dx ? nullptr : d.mutable_data<T>());
  });
  return d;
}

Array conv_data(const Array& gy, const Array& w, const PlanPtr& p) {
  Array dx = conv_backward_kernel(Array(), w, gy, p, true);
  static constexpr ::loom::detail::Primitive kConvData{
      .name = "conv_general_dilated_data", .forward = ::loom::detail::Forward::bilinear};
  if (::loom::detail::transforming()) {
    // <data(gy, w), u> = <gy, conv(u, w)>: linear in gy and in w.
    ::loom::detail::bind(
        kConvData, dx, {&gy, &w},
        [p](const std::vector<Array>& in) { return conv_data(in[0], in[1], p); },
        [gy, w, p](const Array& u, const Array&) {
          return std::vector<Array>{gy.node() ? conv_apply(u, w, p) : Array(),
                                    w.node() ? conv_filter(u, gy, p) : Array()};
        });
  }
  return dx;
}

Array conv_filter(const Array& x, const Array& gy, const PlanPtr& p) {
  Array dw = conv_backward_kernel(x, Array(), gy, p, false);
  static constexpr ::loom::detail::Primitive kConvFilter{
      .name = "conv_general_dilated_filter", .forward = ::loom::detail::Forward::bilinear};
  if (::loom::detail::transforming()) {
    // <filter(x, gy), v> = <gy, conv(x, v)>: linear in x and in gy.
    ::loom::detail::bind(
        kConvFilter, dw, {&x, &gy},
        [p](const std::vector<Array>& in) { return conv_filter(in[0], in[1], p); },
        [x, gy, p](const Array& v, const Array&) {
          return std::vector<Array>{x.node() ? conv_data(gy, v, p) : Array(),
                                    gy.node() ? conv_apply(x, v, p) : Array()};
        });
  }
  return dw;
}

// Validates conv_general_dilated's arguments and plans it: lhs and rhs promoted to a common
// floating dtype, the output shape and the kernels' geometry.
struct Planned {
  Array lhs, rhs;
  Shape out_shape;
  conv::Geom g;
  std::string who;
};

Planned plan(const Array& lhs0, const Array& rhs0, const std::vector<std::int64_t>& window_strides,
             const Padding& padding, const std::vector<std::int64_t>& lhs_dilation_in,
             const std::vector<std::int64_t>& rhs_dilation_in, std::int64_t feature_group_count) {
  ::loom::detail::check_valid(lhs0, "conv_general_dilated");
  ::loom::detail::check_valid(rhs0, "conv_general_dilated");
  const std::string who = "conv_general_dilated: lhs " + lhs0.shape().str() + " " +
                          dtype_name(lhs0.dtype()) + ", rhs " + rhs0.shape().str() + " " +
                          dtype_name(rhs0.dtype());
  const int nd = lhs0.ndim();
  if (nd < 3 || nd > 5) {
    throw Error(who + ": lhs must be (N, spatial..., C) with 1 to 3 spatial dimensions");
  }
  if (rhs0.ndim() != nd) {
    throw Error(who + ": rhs must be (spatial..., C_in / groups, C_out) of the same rank as lhs (" +
                std::to_string(nd) + "), got rank " + std::to_string(rhs0.ndim()));
  }
  if (!is_floating(lhs0.dtype()) || !is_floating(rhs0.dtype())) {
    throw Error(who + ": expected floating operands (float32 or float64)");
  }
  const DType dt = promote_types(lhs0.dtype(), rhs0.dtype());
  const Array lhs = lhs0.astype(dt), rhs = rhs0.astype(dt);
  const int ns = nd - 2;
  auto per_dim = [&](const std::vector<std::int64_t>& v, const char* name) {
    std::vector<std::int64_t> r = v.empty() ? std::vector<std::int64_t>(std::size_t(ns), 1) : v;
    if (static_cast<int>(r.size()) != ns) {
      throw Error(who + ": " + name + " " + ints_str(v) +
                  " must have one entry per spatial dimension (" + std::to_string(ns) + ")");
    }
    win::check_window_arguments(who, name, r);
    return r;
  };
  if (static_cast<int>(window_strides.size()) != ns) {
    throw Error(who + ": window_strides " + ints_str(window_strides) +
                " must have one entry per spatial dimension (" + std::to_string(ns) + ")");
  }
  const auto strides = per_dim(window_strides, "window_strides");
  const auto ldil = per_dim(lhs_dilation_in, "lhs_dilation");
  const auto rdil = per_dim(rhs_dilation_in, "rhs_dilation");
  const std::int64_t G = feature_group_count;
  const std::int64_t C = lhs.shape()[nd - 1], cg = rhs.shape()[nd - 2], O = rhs.shape()[nd - 1];
  if (G < 1) throw Error(who + ": feature_group_count must be >= 1, got " + std::to_string(G));
  if (C % G != 0) {
    throw Error(who + ": feature_group_count " + std::to_string(G) + " does not divide the " +
                std::to_string(C) + " input channels");
  }
  if (O % G != 0) {
    throw Error(who + ": feature_group_count " + std::to_string(G) + " does not divide the " +
                std::to_string(O) + " output channels");
  }
  if (cg * G != C) {
    throw Error(who + ": channel mismatch: lhs has " + std::to_string(C) +
                " input channels, so rhs's input-feature dimension must be " +
                std::to_string(C / G) + " (C_in / feature_group_count), got " + std::to_string(cg));
  }
  std::vector<std::int64_t> in_sp, eff_k;
  for (int i = 0; i < ns; ++i) {
    in_sp.push_back(lhs.shape()[1 + i]);
    // A zero-size kernel dimension stays 0 when dilated (JAX's _dilate_shape).
    const std::int64_t k = rhs.shape()[i];
    eff_k.push_back(k == 0 ? 0 : win::checked_mul(k - 1, rdil[std::size_t(i)], who.c_str()) + 1);
  }
  if (padding.kind == Padding::Kind::same) {
    for (std::int64_t d : ldil) {
      if (d != 1) {
        throw Error(who + ": SAME padding is not defined with lhs_dilation " + ints_str(ldil) +
                    " (as in JAX); give explicit (low, high) pairs");
      }
    }
  }
  const auto pads = win::resolve_padding("conv_general_dilated", padding, in_sp, eff_k, strides);

  conv::Geom g;
  g.n = lhs.shape()[0];
  g.c = C;
  g.o = O;
  g.groups = G;
  g.cg = cg;
  g.og = O / G;
  Shape out_shape{g.n};
  bool identity = true;
  for (int i = 0; i < ns; ++i) {
    const std::size_t s = std::size_t(3 - ns + i), ui = std::size_t(i);
    g.in[s] = in_sp[ui];
    g.k[s] = rhs.shape()[i];
    const std::int64_t in_dil =
        in_sp[ui] == 0 ? 0 : win::checked_mul(in_sp[ui] - 1, ldil[ui], who.c_str()) + 1;
    g.out[s] =
        win::window_out_size(in_dil, pads[ui].first, pads[ui].second, eff_k[ui], strides[ui]);
    out_shape.push_back(g.out[s]);
    identity = identity && g.k[s] == 1 && strides[ui] == 1 && ldil[ui] == 1 &&
               pads[ui].first == 0 && pads[ui].second == 0;
  }
  out_shape.push_back(O);
  g.dnnl.ns = ns;
  g.dnnl.n = g.n;
  g.dnnl.c = C;
  g.dnnl.o = O;
  g.dnnl.groups = G;
  for (int i = 0; i < ns; ++i) {
    const std::size_t s = std::size_t(3 - ns + i), ui = std::size_t(i);
    g.dnnl.in[s] = g.in[s];
    g.dnnl.k[s] = g.k[s];
    g.dnnl.out[s] = g.out[s];
    g.dnnl.stride[s] = strides[ui];
    g.dnnl.pad_lo[s] = pads[ui].first;
    g.dnnl.pad_hi[s] = pads[ui].second;
    g.dnnl.rdil[s] = rdil[ui];
    g.lhs_dilated = g.lhs_dilated || ldil[ui] != 1;
  }
  for (int i = 0; i < 3; ++i) {
    const int u = i - (3 - ns);
    const std::size_t s = std::size_t(i);
    g.taps[s] = u < 0 ? std::vector<std::int64_t>{0}
                      : win::tap_table(g.in[s], g.out[s], g.k[s], strides[std::size_t(u)],
                                       pads[std::size_t(u)].first, ldil[std::size_t(u)],
                                       rdil[std::size_t(u)]);
    g.kvol *= g.k[s];
    g.in_img *= g.in[s];
    g.out_img *= g.out[s];
  }
  g.identity = identity;
  return Planned{lhs, rhs, out_shape, std::move(g), who};
}

}  // namespace

Array conv_general_dilated(const Array& lhs0, const Array& rhs0,
                           const std::vector<std::int64_t>& window_strides, const Padding& padding,
                           const std::vector<std::int64_t>& lhs_dilation_in,
                           const std::vector<std::int64_t>& rhs_dilation_in,
                           std::int64_t feature_group_count) {
  const Planned pl = plan(lhs0, rhs0, window_strides, padding, lhs_dilation_in, rhs_dilation_in,
                          feature_group_count);
  const Array &lhs = pl.lhs, &rhs = pl.rhs;
  const conv::Geom& g = pl.g;
  const DType dt = lhs.dtype();
  const Shape& out_shape = pl.out_shape;

  Array out = Array::empty(out_shape, dt);
  if (out.size() > 0) {
    ::loom::detail::dispatch_float(dt, "conv_general_dilated", [&]<typename T>() {
      if (g.kc() == 0) {
        std::memset(out.mutable_data<T>(), 0, out.nbytes());
      } else {
        conv::forward<T>(g, lhs.data<T>(), rhs.data<T>(), out.mutable_data<T>());
      }
    });
  }
  static constexpr ::loom::detail::Primitive kConv{.name = "conv_general_dilated",
                                                   .forward = ::loom::detail::Forward::bilinear};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kConv, out, {&lhs, &rhs},
        [window_strides, padding, lhs_dilation_in, rhs_dilation_in,
         feature_group_count](const std::vector<Array>& in) {
          return conv_general_dilated(in[0], in[1], window_strides, padding, lhs_dilation_in,
                                      rhs_dilation_in, feature_group_count);
        },
        [lhs, rhs,
         p = std::make_shared<const ConvPlan>(ConvPlan{g, lhs.shape(), rhs.shape(), out.shape()})](
            const Array& gy0, const Array&) {
          const Array gy = gy0.dtype() == lhs.dtype() ? gy0 : gy0.astype(lhs.dtype());
          return conv_vjp(lhs, rhs, gy, p);
        },
        // A batched input with shared filters folds the batch into N (a per-example filter loops).
        [window_strides, padding, lhs_dilation_in, rhs_dilation_in, feature_group_count](
            const std::vector<Array>& in, const std::vector<bool>& batched) {
          if (batched[1]) return Array();
          const Shape& s = in[0].shape();
          std::vector<std::int64_t> folded{s[0] * s[1]};
          for (int d = 2; d < s.size(); ++d) folded.push_back(s[d]);
          const Array y =
              conv_general_dilated(numpy::reshape(in[0], folded), in[1], window_strides, padding,
                                   lhs_dilation_in, rhs_dilation_in, feature_group_count);
          std::vector<std::int64_t> out{s[0], s[1]};
          for (int d = 1; d < y.ndim(); ++d) out.push_back(y.shape()[d]);
          return numpy::reshape(y, out);
        });
  }
  return out;
}

Array conv_general_dilated_bias(const Array& lhs0, const Array& rhs0, const Array& bias0,
                                const std::vector<std::int64_t>& window_strides,
                                const Padding& padding,
                                const std::vector<std::int64_t>& lhs_dilation_in,
                                const std::vector<std::int64_t>& rhs_dilation_in,
                                std::int64_t feature_group_count) {
  ::loom::detail::check_valid(bias0, "conv_general_dilated_bias");
  const Planned pl = plan(lhs0, rhs0, window_strides, padding, lhs_dilation_in, rhs_dilation_in,
                          feature_group_count);
  const conv::Geom& g = pl.g;
  const DType dt = pl.lhs.dtype();
  if (bias0.ndim() != 1 || bias0.shape()[0] != g.o || !is_floating(bias0.dtype())) {
    throw Error("conv_general_dilated_bias: lhs " + lhs0.shape().str() + ", rhs " +
                rhs0.shape().str() + ": bias must be a floating vector of the " +
                std::to_string(g.o) + " output channels, got " + bias0.shape().str() + " " +
                dtype_name(bias0.dtype()));
  }
  const Array &lhs = pl.lhs, &rhs = pl.rhs, bias = bias0.astype(dt);
  Array out = Array::empty(pl.out_shape, dt);
  if (out.size() > 0) {
    ::loom::detail::dispatch_float(dt, "conv_general_dilated_bias", [&]<typename T>() {
      T* y = out.mutable_data<T>();
      if (g.kc() == 0) {
        // An empty kernel sums nothing: y is the bias on every pixel.
        const T* b = bias.data<T>();
        for (std::int64_t r = 0; r < g.rows(); ++r) std::copy(b, b + g.o, y + r * g.o);
      } else {
        conv::forward<T>(g, lhs.data<T>(), rhs.data<T>(), y, bias.data<T>());
      }
    });
  }
  static constexpr ::loom::detail::Primitive kConvBias{.name = "conv_general_dilated_bias"};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kConvBias, out, {&lhs, &rhs, &bias},
        [window_strides, padding, lhs_dilation_in, rhs_dilation_in,
         feature_group_count](const std::vector<Array>& in) {
          return conv_general_dilated_bias(in[0], in[1], in[2], window_strides, padding,
                                           lhs_dilation_in, rhs_dilation_in, feature_group_count);
        },
        // conv's VJP, and the bias's: gy summed over every pixel (as y + bias's unbroadcast).
        [lhs, rhs, bias,
         p = std::make_shared<const ConvPlan>(ConvPlan{g, lhs.shape(), rhs.shape(), out.shape()})](
            const Array& gy0, const Array&) {
          const Array gy = gy0.dtype() == lhs.dtype() ? gy0 : gy0.astype(lhs.dtype());
          std::vector<Array> d = conv_vjp(lhs, rhs, gy, p);
          d.push_back(bias.node() ? ::loom::detail::unbroadcast(gy, bias.shape()) : Array());
          return d;
        },
        // A batched input with shared filters and bias folds the batch into N; else a loop.
        [window_strides, padding, lhs_dilation_in, rhs_dilation_in, feature_group_count](
            const std::vector<Array>& in, const std::vector<bool>& batched) {
          if (batched[1] || batched[2]) return Array();
          const Shape& s = in[0].shape();
          std::vector<std::int64_t> folded{s[0] * s[1]};
          for (int d = 2; d < s.size(); ++d) folded.push_back(s[d]);
          const Array y = conv_general_dilated_bias(numpy::reshape(in[0], folded), in[1], in[2],
                                                    window_strides, padding, lhs_dilation_in,
                                                    rhs_dilation_in, feature_group_count);
          std::vector<std::int64_t> out{s[0], s[1]};
          for (int d = 1; d < y.ndim(); ++d) out.push_back(y.shape()[d]);
          return numpy::reshape(y, out);
        });
  }
  return out;
}

}  // namespace loom::lax
