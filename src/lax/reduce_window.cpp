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
#include "lax/window.hpp"
#include "loom/lax.hpp"

namespace loom::lax {
namespace {

using win::ints_str;

struct WindowGeom {
  int r = 0;              // dims outside the lane
  std::int64_t lane = 1;  // contiguous trailing elements handled together
  std::vector<std::int64_t> in, out, win;
  std::vector<std::vector<std::int64_t>> taps;  // per dim: out * win entries, -1 = padding
  std::vector<std::int64_t> in_stride;          // in elements, lane included
  std::int64_t out_rows = 1, win_count = 1;
};

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::max:
      return "max";
    case ReduceOp::min:
      return "min";
    case ReduceOp::sum:
      return "sum";
  }
  return "?";
}

// Decodes output row `row` into the per-dim tap rows, then visits every window position:
// fn(input offset of the lane, or -1 for padding).
template <typename Fn>
inline void for_window(const WindowGeom& g, std::int64_t row, std::int64_t* oidx,
                       std::int64_t* widx, Fn&& fn) {
  for (int d = g.r - 1; d >= 0; --d) {
    oidx[d] = row % g.out[std::size_t(d)];
    row /= g.out[std::size_t(d)];
    widx[d] = 0;
  }
  for (std::int64_t w = 0; w < g.win_count; ++w) {
    std::int64_t off = 0;
    bool valid = true;
    for (int d = 0; d < g.r; ++d) {
      const std::size_t ud = std::size_t(d);
      const std::int64_t i = g.taps[ud][std::size_t(oidx[d] * g.win[ud] + widx[d])];
      if (i < 0) {
        valid = false;
        break;
      }
      off += i * g.in_stride[ud];
    }
    fn(valid ? off : -1);
    for (int d = g.r - 1; d >= 0; --d) {
      if (++widx[d] < g.win[std::size_t(d)]) break;
      widx[d] = 0;
    }
  }
}

template <typename T>
T identity_of(ReduceOp op) {
  if (op == ReduceOp::sum) return T(0);
  if constexpr (std::is_floating_point_v<T>) {
    return op == ReduceOp::max ? -std::numeric_limits<T>::infinity()
                               : std::numeric_limits<T>::infinity();
  } else {
    return op == ReduceOp::max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
}

// divisor (sum only, floating T; 1 = none): each window sum divided by it while the row is hot,
// the same rounding as reduce_window(sum) / divisor in a second pass.
template <typename T>
void forward(const WindowGeom& g, ReduceOp op, const T* x, T* out, double divisor = 1.0) {
  const std::int64_t L = g.lane;
  ::loom::detail::parallel_for(
      g.out_rows,
      [&](std::int64_t b, std::int64_t e) {
        std::vector<std::int64_t> oidx(std::size_t(g.r) + 1), widx(std::size_t(g.r) + 1);
        for (std::int64_t row = b; row < e; ++row) {
          T* o = out + row * L;
          const T init = identity_of<T>(op);
          for (std::int64_t j = 0; j < L; ++j) o[j] = init;
          for_window(g, row, oidx.data(), widx.data(), [&](std::int64_t off) {
            if (off < 0) return;
            const T* s = x + off;
            if (op == ReduceOp::sum) {
              if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
                using U = std::make_unsigned_t<T>;  // wraps as XLA instead of overflow UB
                for (std::int64_t j = 0; j < L; ++j) o[j] = static_cast<T>(U(o[j]) + U(s[j]));
              } else {
                for (std::int64_t j = 0; j < L; ++j) o[j] = static_cast<T>(o[j] + s[j]);
              }
            } else if (op == ReduceOp::max) {
              // s != s: NaN propagates as in XLA's max (and the blend still vectorizes).
              for (std::int64_t j = 0; j < L; ++j)
                o[j] = (s[j] > o[j] || s[j] != s[j]) ? s[j] : o[j];
            } else {
              for (std::int64_t j = 0; j < L; ++j)
                o[j] = (s[j] < o[j] || s[j] != s[j]) ? s[j] : o[j];
            }
          });
          if constexpr (std::is_floating_point_v<T>) {
            if (divisor != 1.0) {
              const T d = T(divisor);
              for (std::int64_t j = 0; j < L; ++j) o[j] = o[j] / d;
            }
          }
        }
      },
      std::max<std::int64_t>(
          1, ::loom::detail::kParallelGrain / std::max<std::int64_t>(g.win_count * g.lane, 1)));
}

// The input element (flat index) each output element's cotangent goes to, for max/min.
template <typename T>
void select_positions(const WindowGeom& g, ReduceOp op, const T* x, std::int64_t* sel) {
  const std::int64_t L = g.lane;
  ::loom::detail::parallel_for(
      g.out_rows,
      [&](std::int64_t b, std::int64_t e) {
        std::vector<std::int64_t> oidx(std::size_t(g.r) + 1), widx(std::size_t(g.r) + 1);
        for (std::int64_t row = b; row < e; ++row) {
          std::int64_t* s = sel + row * L;
          for (std::int64_t j = 0; j < L; ++j) s[j] = -1;
          for_window(g, row, oidx.data(), widx.data(), [&](std::int64_t off) {
            if (off < 0) return;
            for (std::int64_t j = 0; j < L; ++j) {
              const T v = x[off + j];
              if (s[j] < 0) {
                s[j] = off + j;
                continue;
              }
              // select(current, candidate) = current >= candidate (le for min) keeps the first
              // extreme; a false comparison (NaN) moves on, exactly as XLA's select.
              const T cur = x[s[j]];
              const bool keep = op == ReduceOp::max ? cur >= v : cur <= v;
              if (!keep) s[j] = off + j;
            }
          });
        }
      },
      std::max<std::int64_t>(
          1, ::loom::detail::kParallelGrain / std::max<std::int64_t>(g.win_count * g.lane, 1)));
}

// Windows overlap, so outputs scatter into shared inputs; but when the outermost windowed dim
// has window 1 (a pooling's batch dim), outputs with different indices there write disjoint
// inputs: those blocks of rows run in parallel, each one's adds in the serial order.
// divisor != 1: each cotangent row divided by it once (as the VJP of a following divide would),
// then scattered.
template <typename T>
void sum_backward(const WindowGeom& g, const T* gy, T* dx, double divisor = 1.0) {
  const std::int64_t L = g.lane;
  auto rows = [&](std::int64_t r0, std::int64_t r1) {
    std::vector<std::int64_t> oidx(std::size_t(g.r) + 1), widx(std::size_t(g.r) + 1);
    std::vector<T> scaled(divisor != 1.0 ? std::size_t(L) : 0);
    for (std::int64_t row = r0; row < r1; ++row) {
      const T* s = gy + row * L;
      if (divisor != 1.0) {
        const T dv = T(divisor);
        for (std::int64_t j = 0; j < L; ++j) scaled[std::size_t(j)] = s[j] / dv;
        s = scaled.data();
      }
      for_window(g, row, oidx.data(), widx.data(), [&](std::int64_t off) {
        if (off < 0) return;
        T* d = dx + off;
        for (std::int64_t j = 0; j < L; ++j) d[j] += s[j];
      });
    }
  };
  if (g.r == 0 || g.win[0] != 1 || g.out[0] < 2) {
    rows(0, g.out_rows);
    return;
  }
  const std::int64_t per_block = g.out_rows / g.out[0];
  ::loom::detail::parallel_for(
      g.out[0], [&](std::int64_t b, std::int64_t e) { rows(b * per_block, e * per_block); },
      std::max<std::int64_t>(1, ::loom::detail::kParallelGrain /
                                    std::max<std::int64_t>(per_block * g.win_count * g.lane, 1)));
}

WindowGeom make_geom(const Shape& shape, const std::vector<std::int64_t>& window,
                     const std::vector<std::int64_t>& strides,
                     const std::vector<std::pair<std::int64_t, std::int64_t>>& pads) {
  WindowGeom g;
  const int nd = shape.size();
  // The lane: trailing dims that are untouched by the window.
  int r = nd;
  while (r > 0 && window[std::size_t(r - 1)] == 1 && strides[std::size_t(r - 1)] == 1 &&
         pads[std::size_t(r - 1)].first == 0 && pads[std::size_t(r - 1)].second == 0) {
    g.lane *= shape[r - 1];
    --r;
  }
  g.r = r;
  std::int64_t stride = g.lane;
  g.in_stride.assign(std::size_t(r), 0);
  for (int d = r - 1; d >= 0; --d) {
    g.in_stride[std::size_t(d)] = stride;
    stride *= shape[d];
  }
  for (int d = 0; d < r; ++d) {
    const std::size_t ud = std::size_t(d);
    const std::int64_t out =
        win::window_out_size(shape[d], pads[ud].first, pads[ud].second, window[ud], strides[ud]);
    g.in.push_back(shape[d]);
    g.out.push_back(out);
    g.win.push_back(window[ud]);
    g.taps.push_back(win::tap_table(shape[d], out, window[ud], strides[ud], pads[ud].first, 1, 1));
    g.out_rows *= out;
    g.win_count = win::checked_mul(g.win_count, window[ud], "reduce_window");
  }
  return g;
}

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
  static constexpr ::loom::detail::Primitive kScatter{.name = "reduce_window_select_scatter"};
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
  static constexpr ::loom::detail::Primitive kGather{.name = "reduce_window_select_gather"};
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
                          const std::shared_ptr<const WindowGeom>& gp, ReduceOp op) {
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
        [gp, op](const std::vector<Array>& in) {
          return select_scatter_from(in[0], in[1], gp, op);
        },
        [sel = Positions(sel), gy_shape = gy.shape()](const Array& u, const Array&) {
          return std::vector<Array>{select_gather(u, sel, gy_shape), Array()};
        });
  }
  return dx;
}

// The transpose of the window sum (its VJP): every output's cotangent added to each element of
// its window. Its own VJP is the window sum again.
// divisor != 1: the transpose of the window average (each cotangent divided by it first).
Array window_sum_transpose(const Array& gy, const std::shared_ptr<const WindowGeom>& g,
                           const Shape& x_shape, const std::vector<std::int64_t>& window,
                           const std::vector<std::int64_t>& strides, const Padding& padding,
                           double divisor = 1.0) {
  Array dx = Array::empty(x_shape, gy.dtype());
  ::loom::detail::dispatch_float(gy.dtype(), "reduce_window", [&]<typename T>() {
    T* d = dx.mutable_data<T>();
    std::memset(d, 0, dx.nbytes());
    if (gy.size() > 0) sum_backward<T>(*g, gy.data<T>(), d, divisor);
  });
  static constexpr ::loom::detail::Primitive kSumT{.name = "reduce_window_sum_transpose"};
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

}  // namespace

Array reduce_window(const Array& x, ReduceOp op, const std::vector<std::int64_t>& window,
                    const std::vector<std::int64_t>& strides, const Padding& padding) {
  ::loom::detail::check_valid(x, "reduce_window");
  const std::string who = std::string("reduce_window(") + op_name(op) + "): operand " +
                          x.shape().str() + " " + dtype_name(x.dtype()) + ", window " +
                          ints_str(window) + ", strides " + ints_str(strides);
  const int nd = x.ndim();
  if (static_cast<int>(window.size()) != nd || static_cast<int>(strides.size()) != nd) {
    throw Error(who + ": window and strides need one entry per dimension of the operand (" +
                std::to_string(nd) + ")");
  }
  for (int i = 0; i < nd; ++i) {
    if (window[std::size_t(i)] < 1 || strides[std::size_t(i)] < 1) {
      throw Error(who + ": window sizes and strides must be positive");
    }
  }
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
  static constexpr ::loom::detail::Primitive kReduceWindow{.name = "reduce_window"};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kReduceWindow, out, {&x},
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
            return std::vector<Array>{select_scatter_from(gy, x, gp, op)};
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

namespace loom::lax {

Array reduce_window_mean(const Array& x, const std::vector<std::int64_t>& window,
                         const std::vector<std::int64_t>& strides, const Padding& padding) {
  ::loom::detail::check_valid(x, "reduce_window_mean");
  const std::string who = "reduce_window_mean: operand " + x.shape().str() + " " +
                          dtype_name(x.dtype()) + ", window " + ints_str(window) + ", strides " +
                          ints_str(strides);
  const int nd = x.ndim();
  if (static_cast<int>(window.size()) != nd || static_cast<int>(strides.size()) != nd) {
    throw Error(who + ": window and strides need one entry per dimension of the operand (" +
                std::to_string(nd) + ")");
  }
  for (int i = 0; i < nd; ++i) {
    if (window[std::size_t(i)] < 1 || strides[std::size_t(i)] < 1) {
      throw Error(who + ": window sizes and strides must be positive");
    }
  }
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
  static constexpr ::loom::detail::Primitive kMean{.name = "reduce_window_mean"};
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
