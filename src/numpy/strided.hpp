// Private: the strided-copy kernel and the linear maps behind the VJPs of shape manipulation
// and indexing (src/numpy/manipulation.cpp, indexing.cpp), with the small axis and index checks
// they share.
//
// Almost everything here moves bytes without looking at them, so the kernels dispatch on the
// element size (1, 4 or 8 bytes), not on the dtype. One strided-copy kernel serves slicing,
// broadcasting, padding, concatenation and transposition. The VJPs of slice, pad, concatenate,
// take and take_along_axis are themselves primitives (strided_gather/strided_scatter,
// scatter_add_*), each the transpose of the other of its pair, so that a VJP can be
// differentiated again (hessians) and jit/vmap see the backward pass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loom/array.hpp"

namespace loom::numpy::strided {

using Dims = std::vector<std::int64_t>;

// Python tuple text of a list that may hold -1 (so not a Shape), e.g. "(2, -1)".
std::string str(const std::vector<std::int64_t>& v);
std::string str(const std::vector<int>& v);

// `axis` in [0, ndim), negative counted from the end; an error naming `op` otherwise.
int normalize_axis(int axis, int ndim, const char* op, const Shape& shape);

// Row-major element strides of `s`.
Dims contiguous_strides(const Shape& s);

// Copies a `shape`-shaped view of src (element strides ss from element src_off) to a view of
// dst (strides ds from dst_off). Strides may be 0 or negative.
void strided_copy(const Array& src, std::int64_t src_off, const Dims& ss, Array& dst,
                  std::int64_t dst_off, const Dims& ds, const Shape& shape);

// The same copy on raw memory of `item`-byte elements (1, 4 or 8), for kernels that copy their
// own workspaces (the contraction engine's operand relayouts). The dims are walked in the
// destination's stride order, so they may come in any order.
void strided_copy_raw(const void* src, const Dims& ss, void* dst, const Dims& ds, const Dims& shape,
                      std::size_t item);

// A `shape`-shaped strided view of x copied out (a primitive; its VJP is strided_scatter).
Array strided_gather(const Array& x, std::int64_t offset, const Dims& ss, const Shape& shape);

// The transpose of strided_gather: g added into zeros of `shape` at the view (a primitive).
Array strided_scatter(const Array& g, const Shape& shape, std::int64_t offset, const Dims& ss);

// x[..., start:start+len, ...] along `axis`.
Array take_range(const Array& x, int axis, std::int64_t start, std::int64_t len);

// x[start:stop] along `axis` with Python's clamping (an empty part when stop <= start).
Array slice_axis(const Array& x, int axis, std::int64_t start, std::int64_t stop);

// The permutation q with q[perm[i]] == i.
std::vector<int> inverse_permutation(const std::vector<int>& perm);

// Each axis normalized; repeated axes are an error.
std::vector<int> normalize_axes(const std::vector<int>& axes, int ndim, const char* op,
                                const Shape& shape);

// Throws unless `indices` is a valid integer array.
void check_integer_indices(const Array& indices, const char* op);

// Indices as int64 in [0, n), negative ones counted from the end; out of bounds is an error.
std::vector<std::int64_t> checked_indices(const Array& indices, std::int64_t n, const char* op,
                                          int axis, const Shape& shape);

// An int32 vector holding idx.
Array indices_array(const std::vector<std::int64_t>& idx);

// The transposes of take (scatter-add of g into zeros of x_shape over an (O, N, I) view):
// _raw computes, scatter_add_take binds it as a primitive, _from reads the indices from an array.
Array scatter_add_take_raw(const Array& g, const Shape& x_shape,
                           const std::vector<std::int64_t>& idx, std::int64_t O, std::int64_t N,
                           std::int64_t I);
Array scatter_add_take(const Array& g, const Shape& x_shape, const std::vector<std::int64_t>& idx,
                       std::int64_t O, std::int64_t N, std::int64_t I);
Array scatter_add_take_from(const Array& g, const Array& indices, const Shape& x_shape, int ax);

// The transpose of take_along_axis: g[k] added at flat index src[k] of zeros of `shape`.
Array scatter_add_flat(const Array& g, const Shape& shape, const std::vector<std::int64_t>& src);

}  // namespace loom::numpy::strided
