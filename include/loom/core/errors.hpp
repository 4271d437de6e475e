// Flax's errors (flax/errors.py), as loom::Error subclasses with the same names and messages.
//
// Each message starts with the error's name and ends with the module path, e.g.
//   ScopeParamNotFoundError: Could not find parameter named "kernel" in scope "/Dense_0".
//   InvalidRngError: Dropout_0 needs PRNG for "dropout" (module "/ResidualBlock_0/Dropout_0")
//
//   try { model.apply(variables, x); }
//   catch (const loom::core::ScopeParamShapeError& e) { std::cerr << e.what(); }
//   catch (const loom::Error& e) { ... }   // every one of them is a loom::Error
#pragma once

#include <string>

#include "loom/error.hpp"

namespace loom::core {

/// The common base; `name` is Flax's class name, prefixed to the message.
class FlaxError : public Error {
 public:
  FlaxError(const std::string& name, const std::string& message) : Error(name + ": " + message) {}
};

#define LOOM_FLAX_ERROR(Name)                                                \
  class Name : public FlaxError {                                            \
   public:                                                                   \
    explicit Name(const std::string& message) : FlaxError(#Name, message) {} \
  };
/// A stream is missing from rngs (and "params" is missing too), or rngs are malformed.
LOOM_FLAX_ERROR(InvalidRngError)
/// The variables given to apply are not a dict of collections (dicts).
LOOM_FLAX_ERROR(ApplyScopeInvalidVariablesTypeError)
/// {"params": {"params": ...}} was passed to apply.
LOOM_FLAX_ERROR(ApplyScopeInvalidVariablesStructureError)
/// A parameter is missing from a non-empty "params" collection during apply.
LOOM_FLAX_ERROR(ScopeParamNotFoundError)
/// A collection a module reads is absent or empty (e.g. "batch_stats" not passed).
LOOM_FLAX_ERROR(ScopeCollectionNotFound)
/// A given parameter has another shape than the module's initializer makes.
LOOM_FLAX_ERROR(ScopeParamShapeError)
/// A variable is missing from a non-empty collection.
LOOM_FLAX_ERROR(ScopeVariableNotFoundError)
/// A write to an immutable collection (the forgotten mutable={"batch_stats"}).
LOOM_FLAX_ERROR(ModifyScopeVariableError)
/// A submodule, param or variable name is used twice in one module.
LOOM_FLAX_ERROR(NameInUseError)
/// A module was called, or a module helper used, outside init/apply/bind.
LOOM_FLAX_ERROR(CallCompactUnboundModuleError)
/// A scope (or a submodule handle on it) was used after its init/apply/bind returned.
LOOM_FLAX_ERROR(InvalidScopeError)
/// apply()/init() was given a method that cannot run.
LOOM_FLAX_ERROR(ApplyModuleInvalidMethodError)
#undef LOOM_FLAX_ERROR

}  // namespace loom::core
