// The strided-copy kernel and the linear maps behind manipulation's and indexing's VJPs (see
// numpy/strided.hpp). The copy first merges dimensions that are contiguous on both sides, so
// that the inner loop is as long as possible, and it tiles the 2-D-like transposes (an input
// axis with unit stride that is not the output's inner axis) so that both the reads and the
// writes stay in cache.
#include "numpy/strided.hpp"

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

namespace loom::numpy::strided {

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

// One copy plan run on elements of `item` bytes.
namespace {

void copy_plan(const void* s, void* d, std::size_t item, const CopyPlan& p) {
  switch (item) {
    case 1:
      strided_copy_t(static_cast<const std::uint8_t*>(s), static_cast<std::uint8_t*>(d), p);
      break;
    case 4:
      strided_copy_t(static_cast<const std::uint32_t*>(s), static_cast<std::uint32_t*>(d), p);
      break;
    case 8:
      strided_copy_t(static_cast<const std::uint64_t*>(s), static_cast<std::uint64_t*>(d), p);
      break;
    default:
      throw Error("internal: unsupported element size");
  }
}

}  // namespace

// Copies the elements of a `shape`-shaped view of src (element strides ss, starting at element
// src_off) to a view of dst (strides ds, from dst_off). Strides may be 0 or negative.
void strided_copy(const Array& src, std::int64_t src_off, const Dims& ss, Array& dst,
                  std::int64_t dst_off, const Dims& ds, const Shape& shape) {
  if (shape.numel() == 0) return;
  const std::size_t item = itemsize(src.dtype());
  copy_plan(static_cast<const std::uint8_t*>(src.raw_data()) + src_off * std::int64_t(item),
            static_cast<std::uint8_t*>(dst.raw_mutable_data()) + dst_off * std::int64_t(item), item,
            coalesce(shape, ss, ds));
}

void strided_copy_raw(const void* src, const Dims& ss, void* dst, const Dims& ds, const Dims& shape,
                      std::size_t item) {
  // Destination-major order: dst's unit-stride axis innermost, so that the writes stream (or
  // the tiled transpose applies).
  std::vector<std::size_t> order(shape.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return ds[x] > ds[y]; });
  Shape sh;
  Dims s, d;
  for (std::size_t i : order) {
    if (shape[i] == 0) return;
    sh.push_back(shape[i]);
    s.push_back(ss[i]);
    d.push_back(ds[i]);
  }
  copy_plan(src, dst, item, coalesce(sh, s, d));
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
  static constexpr detail::Primitive kGather{.name = "strided_gather",
                                             .forward = detail::Forward::linear};
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
  static constexpr detail::Primitive kScatter{.name = "strided_scatter",
                                              .forward = detail::Forward::linear};
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
  static constexpr detail::Primitive kScatterAdd{.name = "take_scatter_add",
                                                 .forward = detail::Forward::linear};
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
  static constexpr detail::Primitive kScatterAddFrom{.name = "take_scatter_add",
                                                     .forward = detail::Forward::linear};
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
  static constexpr detail::Primitive kScatterAdd{.name = "take_along_axis_scatter_add",
                                                 .forward = detail::Forward::linear};
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

Array slice_axis(const Array& x, int axis, std::int64_t start, std::int64_t stop) {
  std::vector<Slice> slices(std::size_t(axis + 1));
  slices[std::size_t(axis)] = Slice{start, stop, 1};
  return slice(x, slices);
}

}  // namespace loom::numpy::strided
