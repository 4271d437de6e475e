// Private: the primitive record, the one place each op declares how transformations see it.
//
// As JAX's lax.py defines `tanh_p` with its impl, abstract eval, JVP and batching rule, every
// loom op that computes values itself (rather than composing other ops) binds itself once,
// right after its kernel has produced `out`:
//
//   Array exp(const Array& x) {
//     Array out = ...kernel...;
//     static constexpr detail::Primitive kExp{.name = "exp",
//                                             .batching = detail::Batching::elementwise,
//                                             .vjp_uses_output = true};
//     if (detail::transforming())
//       detail::bind(kExp, out, {&x},
//                    /*impl=*/[](const std::vector<Array>& in) { return exp(in[0]); },
//                    /*vjp=*/[](const Array& g, const Array& y) { return one(g * y); });
//     return out;
//   }
//
// - `impl` recomputes the output from new inputs with the same parameters (captured by value).
//   jit replays it and vmap batches it; it must not capture the inputs themselves.
// - `vjp(g, out)` returns one cotangent per input, in the inputs' order; an invalid Array()
//   means "no contribution". It is written in differentiable loom ops, and it captures the
//   residuals it needs *with* their history (capture `x`, never `x.detached()`), so that when
//   the backward pass is itself being differentiated (grad of grad, hessian, jvp) the second
//   derivative flows through the residuals. The op's own output arrives as `out` (carrying its
//   node) when `vjp_uses_output` is set; never capture `out` in the lambda (a reference cycle).
//   Non-differentiable primitives (integer or bool outputs, random bits) pass `nullptr`.
// - Forward mode (jvp, src/autodiff/jvp_trace.cpp) pushes tangents through each bound primitive
//   with the rule its record declares (`.forward`, `.jvp`): `linear` ops map tangents with their
//   own impl, `bilinear` ops sum impl over the inputs with one operand replaced by its tangent,
//   `symmetric` ones (elementwise activations, softmax) run their VJP on the tangent, `.jvp` is
//   an explicit rule, and the default `derived` rule transposes the op's own VJP locally
//   (J t = d/dg <vjp(g), t>, about 3x a VJP), so every primitive with a VJP has a forward rule.
// - `transforming()` is one thread-local load: with no grad/jit/vmap active nothing is built.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

#include "loom/array.hpp"

namespace loom::detail {

/// How vmap maps a primitive over a batch axis.
enum class Batching : std::uint8_t {
  /// No rule: vmap runs `impl` once per example and stacks the results (exact, slower).
  loop,
  /// `impl` broadcasts its operands as NumPy does (unary and binary elementwise ops, where,
  /// clip, ...): vmap aligns every operand to a common rank with the batch axis in front and
  /// calls `impl` once on the whole batch.
  elementwise,
};

/// How jit's fuser (src/transforms/fusion.cpp) runs a float32 elementwise primitive on one
/// block of n <= 1024 contiguous elements, operands already gathered to the block (scalars and
/// broadcast rows expanded). At most one pointer is set, and it must compute bit for bit what
/// the op's eager kernel computes on float32 (bool for comparisons' outputs and where's
/// condition): call the same vmath kernels / scalar expressions. Outputs may alias an input
/// (elementwise kernels read element i before writing it).
///   static constexpr detail::Primitive kExp{.name = "exp", ..., .block = {.unary = exp_block}};
struct BlockKernel {
  void (*unary)(const float* x, float* out, std::int64_t n) = nullptr;
  void (*binary)(const float* a, const float* b, float* out, std::int64_t n) = nullptr;
  void (*compare)(const float* a, const float* b, bool* out, std::int64_t n) = nullptr;
  void (*select)(const bool* c, const float* x, const float* y, float* out,
                 std::int64_t n) = nullptr;
  constexpr bool fusable() const { return unary || binary || compare || select; }
};

/// How forward mode (jvp) pushes a tangent through a primitive (JAX's per-primitive JVP rule).
/// Inputs that are not floating (indices, masks, keys) are always passed as primals.
enum class Forward : std::uint8_t {
  /// The VJP transposed on this op alone: J t = grad_g <vjp(g), t> (exact, about two VJPs).
  derived,
  /// Linear in its floating inputs jointly: tangent_out = impl(tangents), zeros for floating
  /// inputs without a tangent (reshape, transpose, sum, add, concatenate, take's data ...).
  /// Non-floating inputs stay primals (take's indices), except for Batching::elementwise ops,
  /// whose every input is an operand: there a non-floating input's tangent is zero.
  linear,
  /// Linear in each floating input separately (multiply, contractions, conv):
  /// tangent_out = sum_i impl(inputs with input i replaced by its tangent).
  bilinear,
  /// One input, and a symmetric Jacobian (elementwise ops: diagonal; softmax: diag(y) - y y^T;
  /// standardize): J t = J^T t = vjp(t), one call of the op's own (fused) VJP. Its VJP must
  /// stay differentiable where use_composite_vjp() says so (detail/composite_vjp.hpp).
  symmetric,
};

/// An explicit JVP rule: the output tangent from the primal inputs, the op's output and one
/// tangent per input (zeros where an input has none; non-floating inputs get their primal, or
/// zeros for Batching::elementwise ops, as for `linear`). Captureless, so it sees no op
/// parameters (axes, shapes): ops with parameters use linear/bilinear or the derived rule.
/// Written in loom ops. A captureless lambda fits: `.jvp = [](const auto& x, const Array& y,
/// const auto& t) { return t[0] * y; }` (exp).
using JvpRule = Array (*)(const std::vector<Array>& inputs, const Array& out,
                          const std::vector<Array>& tangents);

/// The static description of one primitive; one `static constexpr` instance per op.
struct Primitive {
  const char* name;
  Batching batching = Batching::loop;
  bool vjp_uses_output = false;  // the VJP reads the op's output (exp, tanh, sqrt, softmax ...)
  BlockKernel block{};           // float32 elementwise ops: the fuser's block kernel
  Forward forward = Forward::derived;  // how jvp pushes tangents through it (unless `jvp`)
  JvpRule jvp = nullptr;               // an explicit forward rule; overrides `forward`
};

using Impl = std::function<Array(const std::vector<Array>& inputs)>;
using Vjp = std::function<std::vector<Array>(const Array& cotangent, const Array& output)>;

/// vmap's batching rule (JAX's per-primitive batcher): the op applied to a whole batch at once.
/// `in[i]` carries the batch on axis 0 where `batched[i]` and is shared by every example
/// otherwise (at least one is batched); the result carries the batch on axis 0. Written in
/// loom ops, so it composes with an enclosing grad/jit/vmap. Returning an invalid Array() means
/// "not covered" (vmap then loops over the examples). Passed as bind's optional last argument:
///
///   detail::bind(kSum, out, {&x}, impl, vjp,
///                /*batch=*/[axes, keepdims](const std::vector<Array>& in,
///                                           const std::vector<bool>&) {
///                  return sum(in[0], shifted(axes), keepdims);
///                });
using BatchRule =
    std::function<Array(const std::vector<Array>& in, const std::vector<bool>& batched)>;

/// An Impl carrying its primitive's batching rule: how a rule reaches a capture's graph node
/// without widening CaptureSink (jit replays it as the plain impl; vmap looks the rule up).
struct RuledImpl {
  Impl impl;
  BatchRule batch;
  Array operator()(const std::vector<Array>& in) const { return impl(in); }
};

/// The batching rule bound with `impl`, or null when the op has none.
inline const BatchRule* batch_rule_of(const Impl& impl) {
  const RuledImpl* r = impl.target<RuledImpl>();
  return r != nullptr && r->batch ? &r->batch : nullptr;
}

/// A float32 block kernel with per-call parameters (an optimizer rule's learning rate, decays):
/// what a plain BlockKernel function pointer cannot carry. `in[k]` points at operand k's block
/// (all `arity` operands gathered as for BlockKernel), `out` may alias any of them. Bit for bit
/// what the op's eager kernel computes on float32.
using BlockFn = std::function<void(const float* const* in, float* out, std::int64_t n)>;

/// An Impl carrying such a block closure, as RuledImpl carries a batching rule (jit replays it as
/// the plain impl; the fuser runs `block`).
struct BlockImpl {
  Impl impl;
  BlockFn block;
  int arity = 0;
  Array operator()(const std::vector<Array>& in) const { return impl(in); }
};

/// The block closure bound with `impl`, or null.
inline const BlockImpl* block_impl_of(const Impl& impl) {
  const BlockImpl* b = impl.target<BlockImpl>();
  return b != nullptr && b->block ? b : nullptr;
}

/// Number of transformations (grad traces, jit/vmap captures) active on this thread.
extern thread_local int g_transform_depth;

inline bool transforming() {
  return g_transform_depth > 0;
}

/// A jit/vmap capture in progress on this thread receives every primitive bound while it is
/// the innermost capture (see loom/jit.hpp). Implemented by the transformations layer.
class CaptureSink {
 public:
  virtual ~CaptureSink() = default;
  virtual void on_primitive(const Primitive& prim, const Array& out,
                            const std::vector<const Array*>& inputs, const Impl& impl) = 0;
};

/// The innermost active capture on this thread, or null.
CaptureSink*& current_capture();

/// Registers `out` as the result of `prim` applied to `inputs` with every active transformation.
void bind_impl(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
               Impl impl, Vjp vjp, BatchRule batch = {});

template <typename ImplF, typename VjpF>
inline void bind(const Primitive& prim, Array& out, std::initializer_list<const Array*> inputs,
                 ImplF&& impl, VjpF&& vjp) {
  if (!transforming()) return;
  bind_impl(prim, out, std::vector<const Array*>(inputs), Impl(std::forward<ImplF>(impl)),
            Vjp(std::forward<VjpF>(vjp)));
}

template <typename ImplF, typename VjpF>
inline void bind(const Primitive& prim, Array& out, const std::vector<Array>& inputs, ImplF&& impl,
                 VjpF&& vjp) {
  if (!transforming()) return;
  std::vector<const Array*> ptrs;
  ptrs.reserve(inputs.size());
  for (const Array& a : inputs) ptrs.push_back(&a);
  bind_impl(prim, out, ptrs, Impl(std::forward<ImplF>(impl)), Vjp(std::forward<VjpF>(vjp)));
}

/// bind with a batching rule for vmap (see BatchRule).
template <typename ImplF, typename VjpF, typename BatchF>
inline void bind(const Primitive& prim, Array& out, std::initializer_list<const Array*> inputs,
                 ImplF&& impl, VjpF&& vjp, BatchF&& batch) {
  if (!transforming()) return;
  bind_impl(prim, out, std::vector<const Array*>(inputs), Impl(std::forward<ImplF>(impl)),
            Vjp(std::forward<VjpF>(vjp)), BatchRule(std::forward<BatchF>(batch)));
}

template <typename ImplF, typename VjpF, typename BatchF>
inline void bind(const Primitive& prim, Array& out, const std::vector<Array>& inputs, ImplF&& impl,
                 VjpF&& vjp, BatchF&& batch) {
  if (!transforming()) return;
  std::vector<const Array*> ptrs;
  ptrs.reserve(inputs.size());
  for (const Array& a : inputs) ptrs.push_back(&a);
  bind_impl(prim, out, ptrs, Impl(std::forward<ImplF>(impl)), Vjp(std::forward<VjpF>(vjp)),
            BatchRule(std::forward<BatchF>(batch)));
}

/// Forward-mode half of bind_impl, implemented in src/autodiff/jvp_trace.cpp: gives `out` a
/// tangent for each active jvp level at which some input has one. `before` is out's node before
/// record_vjp ran (to tell a node made for this op from one `out` shares with another array).
void push_tangents(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                   const Impl& impl, const Vjp& vjp, const Node* before);

/// Reverse-mode half of bind_impl, implemented by the autodiff engine (src/autodiff.cpp):
/// attaches a node to `out` when some input carries history and a grad trace is active.
void record_vjp(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                Vjp vjp);

}  // namespace loom::detail
