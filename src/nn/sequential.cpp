// nn::Sequential, as flax/linen/combinators.py.
#include "loom/nn/sequential.hpp"

namespace loom::nn {

Array Sequential::call(const Array& x) const {
  if (layers.empty()) {
    const core::Scope& s = scope("call");
    throw Error("Empty Sequential module " + (s.name().empty() ? std::string("None") : s.name()) +
                "." + detail::module_path_suffix());
  }
  Array y = x;
  for (std::size_t i = 0; i < layers.size(); ++i) y = layers[i](y, "layers_" + std::to_string(i));
  return y;
}

}  // namespace loom::nn
