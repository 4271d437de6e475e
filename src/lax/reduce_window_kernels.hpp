// Private: reduce_window's kernels and geometry (reduce_window.cpp, reduce_window_sum.cpp).
// lax.reduce_window (max, min, sum) over every dimension, with XLA's padding semantics, and VJPs:
// max/min route each cotangent to the first extreme element of its window (XLA's
// select_and_scatter with ge/le, which never selects padding); sum scatters it to every element.
//
// Trailing dimensions with window 1, stride 1 and no padding (the channels of a pooling) form
// a contiguous "lane" that the inner loops run over, so they vectorize.
//
//   const rw::WindowGeom g = rw::make_geom(x.shape(), window, strides, pads);
//   rw::forward<float>(g, ReduceOp::sum, x, out);  // one output row of `lane` values per pixel
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/dispatch.hpp"
#include "lax/window.hpp"
#include "loom/lax.hpp"

namespace loom::lax::rw {

struct WindowGeom {
  int r = 0;              // dims outside the lane
  std::int64_t lane = 1;  // contiguous trailing elements handled together
  std::vector<std::int64_t> in, out, win;
  std::vector<std::vector<std::int64_t>> taps;  // per dim: out * win entries, -1 = padding
  std::vector<std::int64_t> in_stride;          // in elements, lane included
  std::int64_t out_rows = 1, win_count = 1;
};

inline const char* op_name(ReduceOp op) {
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

// Decodes output row `row` into the per-dim tap rows, then visits every window position in
// row-major window order (the last dim fastest): fn(input offset of the lane, or -1 for
// padding). The last dim's taps are walked directly (one table row, a fixed stride) and the
// outer dims' offset is computed once per run of it, not once per element.
template <typename Fn>
inline void for_window(const WindowGeom& g, std::int64_t row, std::int64_t* oidx,
                       std::int64_t* widx, Fn&& fn) {
  for (int d = g.r - 1; d >= 0; --d) {
    oidx[d] = row % g.out[std::size_t(d)];
    row /= g.out[std::size_t(d)];
    widx[d] = 0;
  }
  if (g.r == 0) {
    fn(0);
    return;
  }
  const int last = g.r - 1;
  const std::size_t ul = std::size_t(last);
  const std::int64_t lw = g.win[ul], ls = g.in_stride[ul];
  const std::int64_t* lt = g.taps[ul].data() + oidx[last] * lw;
  const std::int64_t runs = g.win_count / lw;
  for (std::int64_t w = 0; w < runs; ++w) {
    std::int64_t base = 0;
    bool valid = true;
    for (int d = 0; d < last; ++d) {
      const std::size_t ud = std::size_t(d);
      const std::int64_t i = g.taps[ud][std::size_t(oidx[d] * g.win[ud] + widx[d])];
      if (i < 0) {
        valid = false;
        break;
      }
      base += i * g.in_stride[ud];
    }
    for (std::int64_t k = 0; k < lw; ++k) {
      const std::int64_t i = lt[k];
      fn(valid && i >= 0 ? base + i * ls : -1);
    }
    for (int d = last - 1; d >= 0; --d) {
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

// One window size and one stride per dimension of the operand, all positive; an error naming
// `who` otherwise.
inline void check_window(const std::string& who, int nd, const std::vector<std::int64_t>& window,
                         const std::vector<std::int64_t>& strides) {
  if (static_cast<int>(window.size()) != nd || static_cast<int>(strides.size()) != nd) {
    throw Error(who + ": window and strides need one entry per dimension of the operand (" +
                std::to_string(nd) + ")");
  }
  for (int i = 0; i < nd; ++i) {
    if (window[std::size_t(i)] < 1 || strides[std::size_t(i)] < 1) {
      throw Error(who + ": window sizes and strides must be positive");
    }
  }
}

inline WindowGeom make_geom(const Shape& shape, const std::vector<std::int64_t>& window,
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

/// The transpose of the window sum (its VJP): every output's cotangent added to each element of
/// its window; divisor != 1: the window average's (each cotangent divided by it first).
Array window_sum_transpose(const Array& gy, const std::shared_ptr<const WindowGeom>& g,
                           const Shape& x_shape, const std::vector<std::int64_t>& window,
                           const std::vector<std::int64_t>& strides, const Padding& padding,
                           double divisor = 1.0);

}  // namespace loom::lax::rw
