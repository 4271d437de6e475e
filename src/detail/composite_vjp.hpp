// Private: which backward a fused kernel's VJP runs (see detail/primitive.hpp).
//
// A fused kernel with a hand-written backward kernel (activations, softmax, normalization,
// fused losses) computes its cotangent with that fast kernel, which has no history. When the
// backward pass is itself being differentiated (a grad trace is recording during it: grad of
// grad; or a jvp pushes tangents through it: hessian), the VJP instead computes the same cotangent with composite differentiable loom
// ops, so that the second derivative flows through it:
//
//   [x](const Array& g, const Array& y) {
//     if (detail::use_composite_vjp()) return one(g * y * (1.0 - y));  // differentiable
//     return one(sigmoid_backward_kernel(x, y, g));                     // fast, no history
//   }
//
// Tests set g_force_composite_vjp to run the composite path at first order and compare it with
// the kernel path.
#pragma once

#include "detail/primitive.hpp"
#include "detail/tape.hpp"

namespace loom::detail {

/// Test hook: run every composite VJP path even when nothing records (first order).
inline thread_local bool g_force_composite_vjp = false;

/// True inside a VJP that must stay differentiable (see the file comment), and inside one a
/// jit/vmap capture traces: the fast backward kernel is not a bound primitive, so a capture
/// would bake its result in as a constant; the composite ops are primitives it replays. (The
/// composite cotangent can differ from the kernel's in the last bits: jit's documented list.)
inline bool use_composite_vjp() {
  return recording() || forwarding() || current_capture() != nullptr || g_force_composite_vjp;
}

/// Sets g_force_composite_vjp for a scope (tests).
struct ForceCompositeVjp {
  bool saved = g_force_composite_vjp;
  ForceCompositeVjp() { g_force_composite_vjp = true; }
  ~ForceCompositeVjp() { g_force_composite_vjp = saved; }
  ForceCompositeVjp(const ForceCompositeVjp&) = delete;
  ForceCompositeVjp& operator=(const ForceCompositeVjp&) = delete;
};

}  // namespace loom::detail
