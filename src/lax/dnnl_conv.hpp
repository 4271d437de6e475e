// Private: float32 conv_general_dilated kernels on oneDNN (libdnnl), in loom's layout: NHWC
// activations and HWIO kernels are handed to oneDNN as they are (strided memory descriptors);
// only the small kernel may be reordered into the blocked layout oneDNN's JIT kernels prefer.
//
//   dnnl_conv::Geometry g = ...;  // from conv_general_dilated's plan
//   if (!dnnl_conv::forward(g, x, w, y)) { /* no oneDNN implementation: im2col */ }
//
// Each (kind, geometry) gets its primitive created once and kept in a process-wide, mutex-guarded
// cache (as libtorch does); executing a cached primitive is thread-safe (user-managed scratchpad).
// oneDNN is built with OpenMP (libgomp), the same thread pool as loom's own loops.
//
// Results equal the im2col + sgemm path to float32 rounding only: oneDNN sums the K*C products in
// another order (blocked over channels, vectorized over outputs), so the two differ in the last
// bits (tests compare them at relative tolerance ~1e-5).
#pragma once

#include <array>
#include <compare>
#include <cstdint>

namespace loom::lax::dnnl_conv {

/// One convolution, as conv.cpp's plan has it: spatial sizes right-aligned in 3 entries (a 2-D
/// conv uses entries 1 and 2; unused leading entries are in/k/out = 1, stride/dilation 1, pad 0).
struct Geometry {
  int ns = 2;  // spatial dims, 1 to 3
  std::int64_t n = 0, c = 0, o = 0, groups = 1;
  std::array<std::int64_t, 3> in{1, 1, 1}, k{1, 1, 1}, out{1, 1, 1};
  std::array<std::int64_t, 3> stride{1, 1, 1}, pad_lo{0, 0, 0}, pad_hi{0, 0, 0}, rdil{1, 1, 1};
  auto operator<=>(const Geometry&) const = default;
};

// forward_bias: forward with oneDNN's fused bias (a primitive of its own in the cache).
enum class Kind { forward, backward_data, backward_weights, forward_bias };

/// Which float32 path conv_general_dilated takes: automatic (oneDNN where usable() says so), or,
/// for tests and benchmarks, im2col always or oneDNN wherever it can run at all.
enum class Path { automatic, im2col, dnnl };

/// Test hook, per thread (see Path).
inline thread_local Path g_force_path = Path::automatic;

/// Sets g_force_path for a scope (tests).
struct ForcePath {
  Path saved = g_force_path;
  explicit ForcePath(Path p) { g_force_path = p; }
  ~ForcePath() { g_force_path = saved; }
  ForcePath(const ForcePath&) = delete;
  ForcePath& operator=(const ForcePath&) = delete;
};

/// Output pixels (n * prod(out)) below which the im2col path is faster (see usable()).
inline constexpr std::int64_t kMinRows = 64, kMinRowsWeights = 1024;

/// Whether the oneDNN path is taken for this kernel: every size positive, no negative padding,
/// enough output pixels (or Path::dnnl forced), not Path::im2col. A primitive oneDNN then
/// refuses to create still falls back (the functions below return false).
bool usable(const Geometry& g, Kind kind);

/// How many oneDNN convolutions ran in this process (tests check that a path was taken).
std::int64_t executions();

/// y (n, out..., o) = conv(x (n, in..., c), w (k..., c/groups, o)). False: not run, fall back.
bool forward(const Geometry& g, const float* x, const float* w, float* y);
/// y = conv(x, w) + bias (o), the bias added by the convolution itself (no second pass over y).
/// False: not run, fall back.
bool forward_bias(const Geometry& g, const float* x, const float* w, const float* bias, float* y);
/// dx (x's shape) = the input gradient of conv at output cotangent gy. False: fall back.
bool backward_data(const Geometry& g, const float* gy, const float* w, float* dx);
/// dw (w's shape) = the kernel gradient of conv at output cotangent gy. False: fall back.
bool backward_weights(const Geometry& g, const float* x, const float* gy, float* dw);

}  // namespace loom::lax::dnnl_conv
