// jax.numpy-style shape manipulation and indexing (see loom/numpy/manipulation.hpp).
//
// Almost everything here moves bytes without looking at them, so the kernels dispatch on the
// element size (1, 4 or 8 bytes), not on the dtype. One strided-copy kernel serves slicing,
// broadcasting, padding, concatenation and transposition: it first merges dimensions that are
// contiguous on both sides, so that the inner loop is as long as possible, and it tiles the
// 2-D-like transposes (an input axis with unit stride that is not the output's inner axis) so
// that both the reads and the writes stay in cache.
#include "loom/numpy/manipulation.hpp"

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
#include "loom/numpy/reductions.hpp"

namespace loom::numpy {
namespace {

using Dims = std::vector<std::int64_t>;

// Python tuple text of a list that may hold -1 (so not a Shape).
std::string str(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}
std::string str(const std::vector<int>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

int normalize_axis(int axis, int ndim, const char* op, const Shape& shape) {
  if (axis < -ndim || axis >= ndim) {
    throw Error(std::string(op) + ": axis " + std::to_string(axis) +
                " is out of bounds for an array of rank " + std::to_string(ndim) + " (shape " +
                shape.str() + ")");
  }
  return axis < 0 ? axis + ndim : axis;
}

Dims contiguous_strides(const Shape& s) {
  Dims st(static_cast<std::size_t>(s.size()));
  std::int64_t acc = 1;
  for (int i = s.size() - 1; i >= 0; --i) {
    st[std::size_t(i)] = acc;
    acc *= s[i];
  }
  return st;
}

// ---- the strided copy kernel ---------------------------------------------------------------

struct CopyPlan {
  Dims n, ss, ds;  // extents and element strides of source and destination, merged
};

// Drops size-1 dimensions and merges neighbours that are contiguous on both sides.
CopyPlan coalesce(const Shape& shape, const Dims& ss, const Dims& ds) {
  CopyPlan p;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const std::size_t k = std::size_t(d);
    if (!p.n.empty() && p.ss.back() == ss[k] * shape[d] && p.ds.back() == ds[k] * shape[d]) {
      p.n.back() *= shape[d];
      p.ss.back() = ss[k];
      p.ds.back() = ds[k];
    } else {
      p.n.push_back(shape[d]);
      p.ss.push_back(ss[k]);
      p.ds.push_back(ds[k]);
    }
  }
  return p;
}

// Walks the outer dimensions (all but `skip_a` and `skip_b`) of p from flat index `begin`.
struct Odometer {
  std::int64_t idx[Shape::kMaxRank] = {};
  std::int64_t so = 0, dof = 0;
  const CopyPlan& p;
  int last;  // dimensions [0, last) are walked

  Odometer(const CopyPlan& plan, int walked, std::int64_t begin) : p(plan), last(walked) {
    for (int d = last - 1; d >= 0; --d) {
      const std::size_t k = std::size_t(d);
      idx[k] = begin % p.n[k];
      begin /= p.n[k];
      so += idx[k] * p.ss[k];
      dof += idx[k] * p.ds[k];
    }
  }
  void next() {
    for (int d = last - 1; d >= 0; --d) {
      const std::size_t k = std::size_t(d);
      so += p.ss[k];
      dof += p.ds[k];
      if (++idx[k] < p.n[k]) return;
      so -= p.n[k] * p.ss[k];
      dof -= p.n[k] * p.ds[k];
      idx[k] = 0;
    }
  }
};

template <typename E>
void copy_row(const E* s, std::int64_t ss, E* d, std::int64_t ds, std::int64_t n) {
  if (ss == 1 && ds == 1) {
    std::memcpy(d, s, static_cast<std::size_t>(n) * sizeof(E));
  } else if (ss == 0 && ds == 1) {
    const E v = *s;
    for (std::int64_t j = 0; j < n; ++j) d[j] = v;
  } else if (ds == 1) {
    for (std::int64_t j = 0; j < n; ++j) d[j] = s[j * ss];
  } else {
    for (std::int64_t j = 0; j < n; ++j) d[j * ds] = s[j * ss];
  }
}

template <typename E>
void strided_copy_t(const E* src, E* dst, const CopyPlan& p) {
  const int r = static_cast<int>(p.n.size());
  if (r == 0) {
    *dst = *src;
    return;
  }
  const std::size_t in = std::size_t(r - 1);
  // A transpose-like copy: the destination's inner axis is contiguous but the source's unit
  // stride axis is another one. Copy 2-D tiles of (that axis) x (inner axis).
  int unit = -1;
  if (r >= 2 && p.ds[in] == 1 && p.ss[in] != 1) {
    for (int d = 0; d < r - 1; ++d) {
      if (p.ss[std::size_t(d)] == 1) unit = d;
    }
  }
  if (unit >= 0) {
    constexpr std::int64_t kTile = sizeof(E) <= 4 ? 64 : 32;  // a 16 KiB local tile
    CopyPlan outer;  // every dimension but `unit` and the inner one
    for (int d = 0; d < r - 1; ++d) {
      if (d == unit) continue;
      outer.n.push_back(p.n[std::size_t(d)]);
      outer.ss.push_back(p.ss[std::size_t(d)]);
      outer.ds.push_back(p.ds[std::size_t(d)]);
    }
    const std::int64_t na = p.n[std::size_t(unit)], da = p.ds[std::size_t(unit)];
    const std::int64_t nb = p.n[in], sb = p.ss[in];
    std::int64_t count = 1;
    for (std::int64_t e : outer.n) count *= e;
    const std::int64_t tiles_a = (na + kTile - 1) / kTile;
    detail::parallel_for(
        count * tiles_a,
        [&](std::int64_t begin, std::int64_t end) {
          for (std::int64_t t = begin; t < end; ++t) {
            Odometer od(outer, static_cast<int>(outer.n.size()), t / tiles_a);
            const E* s = src + od.so;
            E* d = dst + od.dof;
            const std::int64_t a0 = (t % tiles_a) * kTile, a1 = std::min(na, a0 + kTile);
            // Through a local tile: both the reads (source rows) and the writes (destination
            // rows) touch whole cache lines once, so power-of-two strides, which map every row
            // of a tile to the same cache set, cost nothing.
            E tile[kTile][kTile];
            for (std::int64_t b0 = 0; b0 < nb; b0 += kTile) {
              const std::int64_t b1 = std::min(nb, b0 + kTile);
              for (std::int64_t b = b0; b < b1; ++b) {
                const E* srow = s + b * sb;
                for (std::int64_t a = a0; a < a1; ++a) tile[b - b0][a - a0] = srow[a];
              }
              for (std::int64_t a = a0; a < a1; ++a) {
                E* drow = d + a * da;
                for (std::int64_t b = b0; b < b1; ++b) drow[b] = tile[b - b0][a - a0];
              }
            }
          }
        },
        std::max<std::int64_t>(1,
                               detail::kParallelGrain / (kTile * std::max<std::int64_t>(nb, 1))));
    return;
  }
  std::int64_t outer = 1;
  for (int d = 0; d < r - 1; ++d) outer *= p.n[std::size_t(d)];
  const std::int64_t inner = p.n[in];
  detail::parallel_for(
      outer,
      [&](std::int64_t begin, std::int64_t end) {
        Odometer od(p, r - 1, begin);
        for (std::int64_t t = begin; t < end; ++t, od.next()) {
          copy_row(src + od.so, p.ss[in], dst + od.dof, p.ds[in], inner);
        }
      },
      std::max<std::int64_t>(1, detail::kParallelGrain / std::max<std::int64_t>(inner, 1)));
}

// Copies the elements of a `shape`-shaped view of src (element strides ss, starting at element
// src_off) to a view of dst (strides ds, from dst_off). Strides may be 0 or negative.
void strided_copy(const Array& src, std::int64_t src_off, const Dims& ss, Array& dst,
                  std::int64_t dst_off, const Dims& ds, const Shape& shape) {
  if (shape.numel() == 0) return;
  const CopyPlan p = coalesce(shape, ss, ds);
  const void* s = src.raw_data();
  void* d = dst.raw_mutable_data();
  switch (itemsize(src.dtype())) {
    case 1:
      strided_copy_t(static_cast<const std::uint8_t*>(s) + src_off,
                     static_cast<std::uint8_t*>(d) + dst_off, p);
      break;
    case 4:
      strided_copy_t(static_cast<const std::uint32_t*>(s) + src_off,
                     static_cast<std::uint32_t*>(d) + dst_off, p);
      break;
    case 8:
      strided_copy_t(static_cast<const std::uint64_t*>(s) + src_off,
                     static_cast<std::uint64_t*>(d) + dst_off, p);
      break;
    default:
      throw Error("internal: unsupported element size");
  }
}

// ---- the linear maps behind the VJPs ----------------------------------------------------
//
// The VJPs of slice, pad, concatenate, take and take_along_axis are themselves primitives, each
// the transpose of the other of its pair, so that a VJP can be differentiated again (hessians)
// and jit/vmap see the backward pass.

using In = std::vector<Array>;

Array strided_scatter(const Array& g, const Shape& shape, std::int64_t offset, const Dims& ss);

// A `shape`-shaped strided view of x (element strides ss from element `offset`), copied out.
Array strided_gather(const Array& x, std::int64_t offset, const Dims& ss, const Shape& shape) {
  Array out = Array::empty(shape, x.dtype());
  strided_copy(x, offset, ss, out, 0, contiguous_strides(shape), shape);
  static constexpr detail::Primitive kGather{.name = "strided_gather"};
  if (detail::transforming())
    detail::bind(
        kGather, out, {&x},
        [offset, ss, shape](const In& in) { return strided_gather(in[0], offset, ss, shape); },
        [offset, ss, x_shape = x.shape()](const Array& g, const Array&) {
          return std::vector<Array>{strided_scatter(g, x_shape, offset, ss)};
        },
        [offset, ss, shape](const In& in, const std::vector<bool>&) {
          // Each example is one contiguous block of the batched operand.
          Dims bs{in[0].size() / in[0].shape()[0]};
          bs.insert(bs.end(), ss.begin(), ss.end());
          return strided_gather(in[0], offset, bs, detail::batched_shape(in[0].shape()[0], shape));
        });
  return out;
}

// Zeros of `shape` with g written into the strided view (offset, ss) of g's shape; the view's
// elements are distinct (slices never overlap), so this is strided_gather's transpose.
Array strided_scatter(const Array& g, const Shape& shape, std::int64_t offset, const Dims& ss) {
  Array out = zeros(shape, g.dtype());
  strided_copy(g, 0, contiguous_strides(g.shape()), out, offset, ss, g.shape());
  static constexpr detail::Primitive kScatter{.name = "strided_scatter"};
  if (detail::transforming())
    detail::bind(
        kScatter, out, {&g},
        [shape, offset, ss](const In& in) { return strided_scatter(in[0], shape, offset, ss); },
        [offset, ss, g_shape = g.shape()](const Array& gg, const Array&) {
          return std::vector<Array>{strided_gather(gg, offset, ss, g_shape)};
        },
        [shape, offset, ss](const In& in, const std::vector<bool>&) {
          Dims bs{shape.numel()};
          bs.insert(bs.end(), ss.begin(), ss.end());
          return strided_scatter(in[0], detail::batched_shape(in[0].shape()[0], shape), offset, bs);
        });
  return out;
}

// x's elements [start, start + len) along `axis`.
Array take_range(const Array& x, int axis, std::int64_t start, std::int64_t len) {
  Shape out_shape = x.shape();
  out_shape[axis] = len;
  const Dims ss = contiguous_strides(x.shape());
  return strided_gather(x, start * ss[std::size_t(axis)], ss, out_shape);
}

std::vector<int> inverse_permutation(const std::vector<int>& perm) {
  std::vector<int> inv(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inv[std::size_t(perm[i])] = static_cast<int>(i);
  return inv;
}

// Normalizes a list of axes of an array of rank `ndim`; repeats are an error.
std::vector<int> normalize_axes(const std::vector<int>& axes, int ndim, const char* op,
                                const Shape& shape) {
  std::vector<int> out;
  std::vector<bool> seen(static_cast<std::size_t>(ndim), false);
  for (int a : axes) {
    const int n = normalize_axis(a, ndim, op, shape);
    if (seen[std::size_t(n)]) {
      throw Error(std::string(op) + ": repeated axis " + std::to_string(a) + " in " + str(axes));
    }
    seen[std::size_t(n)] = true;
    out.push_back(n);
  }
  return out;
}

void check_integer_indices(const Array& indices, const char* op) {
  detail::check_valid(indices, op);
  if (!is_integer(indices.dtype())) {
    throw Error(std::string(op) + ": indices must be an integer array, got " +
                dtype_name(indices.dtype()) + indices.shape().str());
  }
}

// Indices as int64 in [0, n), negative ones counted from the end; anything else is an error.
std::vector<std::int64_t> checked_indices(const Array& indices, std::int64_t n, const char* op,
                                          int axis, const Shape& shape) {
  loom::detail::KernelRead reading;
  const std::vector<double> raw = indices.to_vector<double>();  // exact for 32-bit integers
  std::vector<std::int64_t> idx(raw.begin(), raw.end());
  for (std::int64_t& i : idx) {
    if (i < -n || i >= n) {
      throw Error(std::string(op) + ": index " + std::to_string(i) + " is out of bounds for axis " +
                  std::to_string(axis) + " of size " + std::to_string(n) + " (array shape " +
                  shape.str() + ")");
    }
    if (i < 0) i += n;
  }
  return idx;
}

Array indices_array(const std::vector<std::int64_t>& idx) {
  std::vector<std::int32_t> v(idx.begin(), idx.end());
  return Array(v, Shape{static_cast<std::int64_t>(v.size())}, DType::int32);
}

Array scatter_add_take_raw(const Array& g, const Shape& x_shape,
                           const std::vector<std::int64_t>& idx, std::int64_t O, std::int64_t N,
                           std::int64_t I) {
  Array out = zeros(x_shape, g.dtype());
  const std::int64_t K = static_cast<std::int64_t>(idx.size());
  detail::dispatch_float(g.dtype(), "take", [&]<typename T>() {
    const T* gp = g.data<T>();
    T* op = out.mutable_data<T>();
    for (std::int64_t o = 0; o < O; ++o) {
      for (std::int64_t k = 0; k < K; ++k) {
        const T* src = gp + (o * K + k) * I;
        T* dst = op + (o * N + idx[std::size_t(k)]) * I;
        for (std::int64_t i = 0; i < I; ++i) dst[i] += src[i];
      }
    }
  });
  return out;
}

// out[o, idx[k], i] += g[o, k, i]: the VJP of take (floating g only); its own VJP is the take.
Array scatter_add_take(const Array& g, const Shape& x_shape, const std::vector<std::int64_t>& idx,
                       std::int64_t O, std::int64_t N, std::int64_t I) {
  Array out = scatter_add_take_raw(g, x_shape, idx, O, N, I);
  static constexpr detail::Primitive kScatterAdd{.name = "take_scatter_add"};
  if (detail::transforming())
    detail::bind(
        kScatterAdd, out, {&g},
        [x_shape, idx, O, N, I](const In& in) {
          return scatter_add_take(in[0], x_shape, idx, O, N, I);
        },
        [idx, O, N, I, g_shape = g.shape()](const Array& gg, const Array&) {
          return std::vector<Array>{
              reshape(take(reshape(gg, {O, N, I}), indices_array(idx), 1), g_shape.to_vector())};
        },
        [x_shape, idx, O, N, I](const In& in, const std::vector<bool>&) {
          // The batch is an outer loop of the scatter: O grows by the batch size.
          const std::int64_t size = in[0].shape()[0];
          return scatter_add_take(in[0], detail::batched_shape(size, x_shape), idx, size * O, N, I);
        });
  return out;
}

// scatter_add_take with the indices read by this very call: take's VJP as a jit/vmap capture
// records it (a primitive of g and the indices), so that a replay or a batch scatters to its
// own indices rather than to the traced ones.
Array scatter_add_take_from(const Array& g, const Array& indices, const Shape& x_shape, int ax) {
  const std::int64_t N = x_shape[ax];
  const std::vector<std::int64_t> idx = checked_indices(indices, N, "take", ax, x_shape);
  std::int64_t O = 1, I = 1;
  for (int d = 0; d < ax; ++d) O *= x_shape[d];
  for (int d = ax + 1; d < x_shape.size(); ++d) I *= x_shape[d];
  Array out = scatter_add_take_raw(g, x_shape, idx, O, N, I);
  static constexpr detail::Primitive kScatterAddFrom{.name = "take_scatter_add"};
  if (detail::transforming())
    detail::bind(
        kScatterAddFrom, out, {&g, &indices},
        [x_shape, ax](const In& in) { return scatter_add_take_from(in[0], in[1], x_shape, ax); },
        [indices, O, N, I, g_shape = g.shape()](const Array& gg, const Array&) {
          return std::vector<Array>{
              reshape(take(reshape(gg, {O, N, I}), ravel(indices), 1), g_shape.to_vector()),
              Array()};
        },
        [x_shape, ax](const In& in, const std::vector<bool>& batched) {
          if (batched[1]) return Array();  // per-example indices: per example
          return scatter_add_take_from(in[0], in[1],
                                       detail::batched_shape(in[0].shape()[0], x_shape), ax + 1);
        });
  return out;
}

// gx[src[j]] += g[j] into zeros of `shape`: the VJP of take_along_axis; its VJP gathers g at src.
Array scatter_add_flat(const Array& g, const Shape& shape, const std::vector<std::int64_t>& src) {
  Array gx = zeros(shape, g.dtype());
  detail::dispatch_float(g.dtype(), "take_along_axis", [&]<typename T>() {
    const T* gp = g.data<T>();
    T* xp = gx.mutable_data<T>();
    for (std::size_t j = 0; j < src.size(); ++j) xp[src[j]] += gp[j];
  });
  static constexpr detail::Primitive kScatterAdd{.name = "take_along_axis_scatter_add"};
  if (detail::transforming())
    detail::bind(
        kScatterAdd, gx, {&g},
        [shape, src](const In& in) { return scatter_add_flat(in[0], shape, src); },
        [src, g_shape = g.shape()](const Array& gg, const Array&) {
          return std::vector<Array>{
              reshape(take(ravel(gg), indices_array(src), 0), g_shape.to_vector())};
        });
  return gx;
}

}  // namespace

// ---- shapes -------------------------------------------------------------------------------

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int n = std::max(a.size(), b.size());
  Shape out;
  for (int i = 0; i < n; ++i) {
    const int ia = i - (n - a.size()), ib = i - (n - b.size());
    const std::int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      throw Error(std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                  " cannot be broadcast together (dimension " + std::to_string(da) + " vs " +
                  std::to_string(db) + ")");
    }
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

Array reshape(const Array& x, std::vector<std::int64_t> shape) {
  detail::check_valid(x, "reshape");
  if (shape.size() > static_cast<std::size_t>(Shape::kMaxRank)) {
    throw Error("reshape: shape " + str(shape) + " has more than " +
                std::to_string(Shape::kMaxRank) + " dimensions");
  }
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) {
        throw Error("reshape: can only specify one unknown dimension (-1), got " + str(shape));
      }
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      throw Error("reshape: invalid dimension " + std::to_string(shape[i]) + " in " + str(shape));
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      throw Error("reshape: the size of shape " + str(shape) + " overflows int64");
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.size() % known != 0) {
      throw Error("reshape: cannot reshape array of shape " + x.shape().str() + " (size " +
                  std::to_string(x.size()) + ") into shape " + str(shape));
    }
    shape[std::size_t(infer)] = x.size() / known;
  }
  Shape target(shape);
  if (target.numel() != x.size()) {
    throw Error("reshape: cannot reshape array of shape " + x.shape().str() + " (size " +
                std::to_string(x.size()) + ") into shape " + target.str() + " (size " +
                std::to_string(target.numel()) + ")");
  }
  if (target == x.shape()) return x;
  Array out = x.reshaped_view(target);
  static constexpr detail::Primitive kReshape{.name = "reshape"};
  if (detail::transforming())
    detail::bind(
        kReshape, out, {&x}, [shape](const In& in) { return reshape(in[0], shape); },
        [in_shape = x.shape()](const Array& g, const Array&) {
          return std::vector<Array>{reshape(g, in_shape.to_vector())};
        },
        [shape](const In& in, const std::vector<bool>&) {
          std::vector<std::int64_t> s{in[0].shape()[0]};
          s.insert(s.end(), shape.begin(), shape.end());
          return reshape(in[0], s);
        });
  return out;
}

Array ravel(const Array& x) {
  return reshape(x, {-1});
}

Array transpose(const Array& x) {
  detail::check_valid(x, "transpose");
  std::vector<int> perm;
  for (int i = x.ndim() - 1; i >= 0; --i) perm.push_back(i);
  return transpose(x, perm);
}

Array transpose(const Array& x, std::vector<int> axes) {
  detail::check_valid(x, "transpose");
  const int nd = x.ndim();
  if (static_cast<int>(axes.size()) != nd) {
    throw Error("transpose: axes " + str(axes) + " do not match an array of rank " +
                std::to_string(nd) + " (shape " + x.shape().str() + ")");
  }
  const std::vector<int> perm = normalize_axes(axes, nd, "transpose", x.shape());
  Shape out_shape;
  for (int p : perm) out_shape.push_back(x.shape()[p]);
  // Only size-1 axes move: the bytes are already in order.
  bool in_order = true;
  int prev = -1;
  for (int p : perm) {
    if (x.shape()[p] == 1) continue;
    if (p < prev) in_order = false;
    prev = p;
  }
  Array out;
  if (in_order) {
    if (out_shape == x.shape()) return x;
    out = x.reshaped_view(out_shape);
  } else {
    out = Array::empty(out_shape, x.dtype());
    const Dims xs = contiguous_strides(x.shape());
    Dims ss;
    for (int p : perm) ss.push_back(xs[std::size_t(p)]);
    strided_copy(x, 0, ss, out, 0, contiguous_strides(out_shape), out_shape);
  }
  static constexpr detail::Primitive kTranspose{.name = "transpose"};
  if (detail::transforming())
    detail::bind(
        kTranspose, out, {&x}, [perm](const In& in) { return transpose(in[0], perm); },
        [inv = inverse_permutation(perm)](const Array& g, const Array&) {
          return std::vector<Array>{transpose(g, inv)};
        },
        [perm](const In& in, const std::vector<bool>&) {
          std::vector<int> p{0};
          for (int a : perm) p.push_back(a + 1);
          return transpose(in[0], p);
        });
  return out;
}

Array swapaxes(const Array& x, int axis1, int axis2) {
  detail::check_valid(x, "swapaxes");
  const int a = normalize_axis(axis1, x.ndim(), "swapaxes", x.shape());
  const int b = normalize_axis(axis2, x.ndim(), "swapaxes", x.shape());
  std::vector<int> perm(std::size_t(x.ndim()));
  for (int i = 0; i < x.ndim(); ++i) perm[std::size_t(i)] = i;
  std::swap(perm[std::size_t(a)], perm[std::size_t(b)]);
  return transpose(x, perm);
}

Array moveaxis(const Array& x, int source, int destination) {
  detail::check_valid(x, "moveaxis");
  const int s = normalize_axis(source, x.ndim(), "moveaxis", x.shape());
  const int d = normalize_axis(destination, x.ndim(), "moveaxis", x.shape());
  std::vector<int> perm;
  for (int i = 0; i < x.ndim(); ++i) {
    if (i != s) perm.push_back(i);
  }
  perm.insert(perm.begin() + d, s);
  return transpose(x, perm);
}

Array expand_dims(const Array& x, Axes axes) {
  detail::check_valid(x, "expand_dims");
  if (!axes.axes) throw Error("expand_dims: an axis (or a list of axes) is required");
  const int nd = x.ndim() + static_cast<int>(axes.axes->size());
  std::vector<int> where = normalize_axes(*axes.axes, nd, "expand_dims", x.shape());
  std::vector<bool> is_new(std::size_t(nd), false);
  for (int w : where) is_new[std::size_t(w)] = true;
  std::vector<std::int64_t> shape;
  int k = 0;
  for (int i = 0; i < nd; ++i) shape.push_back(is_new[std::size_t(i)] ? 1 : x.shape()[k++]);
  return reshape(x, shape);
}

Array squeeze(const Array& x, Axes axes) {
  detail::check_valid(x, "squeeze");
  std::vector<bool> drop(std::size_t(x.ndim()), false);
  if (!axes.axes) {
    for (int i = 0; i < x.ndim(); ++i) drop[std::size_t(i)] = x.shape()[i] == 1;
  } else {
    for (int a : normalize_axes(*axes.axes, x.ndim(), "squeeze", x.shape())) {
      if (x.shape()[a] != 1) {
        throw Error("squeeze: cannot select axis " + std::to_string(a) + " of shape " +
                    x.shape().str() + ": its size is " + std::to_string(x.shape()[a]) + ", not 1");
      }
      drop[std::size_t(a)] = true;
    }
  }
  std::vector<std::int64_t> shape;
  for (int i = 0; i < x.ndim(); ++i) {
    if (!drop[std::size_t(i)]) shape.push_back(x.shape()[i]);
  }
  return reshape(x, shape);
}

Array broadcast_to(const Array& x, Shape shape) {
  detail::check_valid(x, "broadcast_to");
  const int lead = shape.size() - x.ndim();
  bool ok = lead >= 0;
  for (int i = 0; ok && i < x.ndim(); ++i) {
    ok = x.shape()[i] == shape[i + lead] || x.shape()[i] == 1;
  }
  if (!ok) {
    throw Error("broadcast_to: cannot broadcast an array of shape " + x.shape().str() +
                " to shape " + shape.str());
  }
  if (shape == x.shape()) return x;
  Array out = Array::empty(shape, x.dtype());
  const Dims xs = contiguous_strides(x.shape());
  Dims ss(std::size_t(shape.size()), 0);
  for (int i = 0; i < x.ndim(); ++i) {
    ss[std::size_t(i + lead)] = x.shape()[i] == 1 ? 0 : xs[std::size_t(i)];
  }
  strided_copy(x, 0, ss, out, 0, contiguous_strides(shape), shape);
  static constexpr detail::Primitive kBroadcastTo{.name = "broadcast_to"};
  if (detail::transforming())
    detail::bind(
        kBroadcastTo, out, {&x}, [shape](const In& in) { return broadcast_to(in[0], shape); },
        [in_shape = x.shape()](const Array& g, const Array&) {
          return std::vector<Array>{detail::unbroadcast(g, in_shape)};
        },
        [shape](const In& in, const std::vector<bool>&) {
          // Size-1 axes after the batch give the example the target's rank, then broadcast.
          const Array& x = in[0];
          std::vector<std::int64_t> s{x.shape()[0]};
          for (int d = x.ndim() - 1; d < shape.size(); ++d) s.push_back(1);
          for (int d = 1; d < x.ndim(); ++d) s.push_back(x.shape()[d]);
          return broadcast_to(reshape(x, s), detail::batched_shape(x.shape()[0], shape));
        });
  return out;
}

// ---- joining and splitting --------------------------------------------------------------------

Array concatenate(const std::vector<Array>& xs, int axis) {
  if (xs.empty()) throw Error("concatenate: need at least one array to concatenate");
  for (const Array& x : xs) detail::check_valid(x, "concatenate");
  const Shape& first = xs[0].shape();
  if (first.size() == 0) throw Error("concatenate: zero-dimensional arrays cannot be concatenated");
  const int ax = normalize_axis(axis, first.size(), "concatenate", first);
  DType dtype = xs[0].dtype();
  std::int64_t total = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    bool ok = s.size() == first.size();
    for (int d = 0; ok && d < s.size(); ++d) ok = d == ax || s[d] == first[d];
    if (!ok) {
      throw Error("concatenate: all input array dimensions except for axis " + std::to_string(ax) +
                  " must match; got " + first.str() + " at index 0 and " + s.str() + " at index " +
                  std::to_string(k));
    }
    dtype = promote_types(dtype, xs[k].dtype());
    total += s[ax];
  }
  std::vector<Array> inputs;
  for (const Array& x : xs) inputs.push_back(x.astype(dtype));
  if (inputs.size() == 1) return inputs[0];
  Shape out_shape = first;
  out_shape[ax] = total;
  Array out = Array::empty(out_shape, dtype);
  const Dims ds = contiguous_strides(out_shape);
  std::int64_t offset = 0;
  std::vector<std::int64_t> starts;
  for (const Array& x : inputs) {
    starts.push_back(offset);
    strided_copy(x, 0, contiguous_strides(x.shape()), out, offset * ds[std::size_t(ax)], ds,
                 x.shape());
    offset += x.shape()[ax];
  }
  std::vector<std::int64_t> lens;
  for (const Array& x : inputs) lens.push_back(x.shape()[ax]);
  static constexpr detail::Primitive kConcatenate{.name = "concatenate"};
  if (detail::transforming()) {
    std::vector<DType> dtypes;
    for (const Array& x : xs) dtypes.push_back(x.dtype());
    detail::bind(
        kConcatenate, out, xs, [ax](const In& in) { return concatenate(in, ax); },
        [ax, starts, lens, dtypes](const Array& g, const Array&) {
          std::vector<Array> gs;
          for (std::size_t k = 0; k < starts.size(); ++k) {
            Array part = take_range(g, ax, starts[k], lens[k]);
            // An input promoted to g's dtype gets its cotangent converted back.
            if (is_floating(dtypes[k]) && dtypes[k] != g.dtype()) part = part.astype(dtypes[k]);
            gs.push_back(part);
          }
          return gs;
        },
        [ax](const In& in, const std::vector<bool>& batched) {
          const std::int64_t size = detail::batch_size(in, batched);
          std::vector<Array> parts;
          for (std::size_t k = 0; k < in.size(); ++k)
            parts.push_back(detail::with_batch(in[k], batched[k], size));
          return concatenate(parts, ax + 1);
        });
  }
  return out;
}

Array stack(const std::vector<Array>& xs, int axis) {
  if (xs.empty()) throw Error("stack: need at least one array to stack");
  for (const Array& x : xs) detail::check_valid(x, "stack");
  for (std::size_t k = 1; k < xs.size(); ++k) {
    if (xs[k].shape() != xs[0].shape()) {
      throw Error("stack: all input arrays must have the same shape; got " + xs[0].shape().str() +
                  " at index 0 and " + xs[k].shape().str() + " at index " + std::to_string(k));
    }
  }
  const int ax = normalize_axis(axis, xs[0].ndim() + 1, "stack", xs[0].shape());
  std::vector<Array> expanded;
  for (const Array& x : xs) expanded.push_back(expand_dims(x, ax));
  return concatenate(expanded, ax);
}

namespace {

// x[start:stop] along `axis` with Python's clamping (an empty part when stop <= start).
Array slice_axis(const Array& x, int axis, std::int64_t start, std::int64_t stop) {
  std::vector<Slice> slices(std::size_t(axis + 1));
  slices[std::size_t(axis)] = Slice{start, stop, 1};
  return slice(x, slices);
}

}  // namespace

std::vector<Array> split(const Array& x, std::int64_t sections, int axis) {
  detail::check_valid(x, "split");
  const int ax = normalize_axis(axis, x.ndim(), "split", x.shape());
  const std::int64_t n = x.shape()[ax];
  if (sections <= 0 || n % sections != 0) {
    throw Error("split: array split does not result in an equal division: axis " +
                std::to_string(ax) + " of shape " + x.shape().str() + " into " +
                std::to_string(sections) + " sections");
  }
  std::vector<std::int64_t> indices;
  for (std::int64_t k = 1; k < sections; ++k) indices.push_back(k * (n / sections));
  return split(x, indices, ax);
}

std::vector<Array> split(const Array& x, const std::vector<std::int64_t>& indices, int axis) {
  detail::check_valid(x, "split");
  const int ax = normalize_axis(axis, x.ndim(), "split", x.shape());
  std::vector<Array> parts;
  std::optional<std::int64_t> start = 0;
  for (std::size_t k = 0; k <= indices.size(); ++k) {
    std::vector<Slice> slices(std::size_t(ax + 1));
    slices[std::size_t(ax)] =
        Slice{start, k < indices.size() ? std::optional(indices[k]) : std::nullopt, 1};
    parts.push_back(slice(x, slices));
    if (k < indices.size()) start = indices[k];
  }
  return parts;
}

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
  static constexpr detail::Primitive kSlice{.name = "slice"};
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
  static constexpr detail::Primitive kPad{.name = "pad"};
  if (detail::transforming())
    detail::bind(
        kPad, out, {&x},
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
  static constexpr detail::Primitive kTake{.name = "take"};
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
  static constexpr detail::Primitive kTakeAlongAxis{.name = "take_along_axis"};
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
