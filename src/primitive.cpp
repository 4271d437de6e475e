// The primitive record's dispatch (see detail/primitive.hpp): each bound primitive goes to the
// autodiff engine when a grad trace is active and to the innermost jit/vmap capture.
#include "detail/primitive.hpp"

#include "detail/tape.hpp"

namespace loom::detail {

thread_local int g_transform_depth = 0;

CaptureSink*& current_capture() {
  thread_local CaptureSink* sink = nullptr;
  return sink;
}

void bind_impl(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
               Impl impl, Vjp vjp) {
  if (CaptureSink* sink = current_capture()) sink->on_primitive(prim, out, inputs, impl);
  if (vjp && recording()) record_vjp(prim, out, inputs, std::move(vjp));
}

}  // namespace loom::detail
