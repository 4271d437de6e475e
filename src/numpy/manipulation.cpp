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
#include "numpy/strided.hpp"

namespace loom::numpy {
using namespace strided;  // NOLINT(google-build-using-namespace): the shared kernels
using In = std::vector<Array>;

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
  static constexpr detail::Primitive kReshape{.name = "reshape",
                                              .forward = detail::Forward::linear};
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
  static constexpr detail::Primitive kTranspose{.name = "transpose",
                                                .forward = detail::Forward::linear};
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
  static constexpr detail::Primitive kBroadcastTo{.name = "broadcast_to",
                                                  .forward = detail::Forward::linear};
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
  // Linear in its operands; an integer operand (no tangent, but not a parameter either) takes
  // the derived rule, since the linear rule passes non-floating inputs through as primals.
  static constexpr detail::Primitive kConcatenate{.name = "concatenate",
                                                  .forward = detail::Forward::linear};
  static constexpr detail::Primitive kConcatenateMixed{.name = "concatenate"};
  if (detail::transforming()) {
    std::vector<DType> dtypes;
    bool all_floating = true;
    for (const Array& x : xs) {
      dtypes.push_back(x.dtype());
      all_floating = all_floating && is_floating(x.dtype());
    }
    detail::bind(
        all_floating ? kConcatenate : kConcatenateMixed, out, xs,
        [ax](const In& in) { return concatenate(in, ax); },
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

}  // namespace loom::numpy
