// nn::remat and nn::jit (see loom/nn/transforms_call.hpp): when the lifted call runs unlifted.
#include "loom/nn/transforms_call.hpp"

namespace loom::nn::detail {

bool run_unlifted(const core::Scope& scope) {
  if (scope.is_initializing()) return true;
  // A mutable collection (batch_stats while training, intermediates being sown) is written
  // through the scope, which a pure function of the variables cannot do.
  const Tree variables = scope.variables();
  for (const auto& [collection, unused] : variables.dict()) {
    if (scope.is_mutable_collection(collection)) return true;
  }
  return false;
}

}  // namespace loom::nn::detail
