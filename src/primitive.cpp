// The primitive record's dispatch (see detail/primitive.hpp): each bound primitive goes to the
// autodiff engine when a grad trace is active, to the forward trace when a jvp is active, and to
// the innermost jit/vmap capture.
#include "detail/primitive.hpp"

#include "detail/tape.hpp"

namespace loom::detail {

thread_local int g_transform_depth = 0;

CaptureSink*& current_capture() {
  thread_local CaptureSink* sink = nullptr;
  return sink;
}

void bind_impl(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
               Impl impl, Vjp vjp, BatchRule batch) {
  if (CaptureSink* sink = current_capture()) {
    // The rule rides inside the impl (RuledImpl) only when a capture will keep it; a grad
    // trace alone never needs it.
    if (batch) impl = Impl(RuledImpl{std::move(impl), std::move(batch)});
    sink->on_primitive(prim, out, inputs, impl);
  }
  if (forwarding() && vjp) {
    // Forward mode reads the VJP (the derived rule), so the tape gets a copy.
    const Node* before = out.node().get();
    if (recording()) record_vjp(prim, out, inputs, vjp);
    push_tangents(prim, out, inputs, impl, vjp, before);
    return;
  }
  if (vjp && recording()) record_vjp(prim, out, inputs, std::move(vjp));
}

}  // namespace loom::detail
