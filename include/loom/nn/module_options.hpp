// Options of a module's init/apply (nn::Module): rngs, mutable collections,
// capture_intermediates, and nn::method for selecting a named method. See nn/module.hpp.
//
//   model.init(key, {.mutable_collections = true}, x);
//   model.apply(variables, {.rngs = {{"dropout", key}}}, x, /*train=*/true);
//   auto [y, state] = model.apply_mutable(variables, {.capture_intermediates = true}, x);
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "loom/core/scope.hpp"
#include "loom/random.hpp"

namespace loom::nn {

using core::CollectionFilter;
using core::Rngs;

/// Which module calls capture_intermediates records (Flax's `capture_intermediates=`): true
/// records the output of every module's call() (Flax's default filter: `__call__` only); a
/// function decides per module and method.
///   {.capture_intermediates = true}
///   {.capture_intermediates = [](const core::Scope& s, std::string_view method) {
///        return s.module_type() == "Dense"; }}
class CaptureIntermediates {
 public:
  using Filter = std::function<bool(const core::Scope& module, std::string_view method)>;
  CaptureIntermediates() = default;
  CaptureIntermediates(bool all) : all_(all) {}                        // NOLINT
  CaptureIntermediates(Filter filter) : filter_(std::move(filter)) {}  // NOLINT
  template <typename F>
  requires std::is_invocable_r_v<bool, F, const core::Scope&, std::string_view>
  CaptureIntermediates(F f) : filter_(std::move(f)) {}  // NOLINT
  bool enabled() const { return all_ || filter_ != nullptr; }
  bool captures(const core::Scope& module, std::string_view method) const {
    return filter_ ? filter_(module, method) : (all_ && method == "__call__");
  }

 private:
  bool all_ = false;
  Filter filter_;
};

/// The rngs argument of apply: a dict of streams, or one key meaning {"params": key}
/// (Flax's `apply(v, x, rngs=key)`).
///   {.rngs = {{"dropout", k}}}    {.rngs = k}
struct RngsArg : Rngs {
  RngsArg() = default;
  RngsArg(Rngs rngs) : Rngs(std::move(rngs)) {}                                    // NOLINT
  RngsArg(const random::Key& key) : Rngs{{"params", key}} {}                       // NOLINT
  RngsArg(std::initializer_list<std::pair<const std::string, random::Key>> items)  // NOLINT
      : Rngs(items) {}
};

/// Options of apply(): rng streams, the mutable collections (apply_mutable only) and
/// capture_intermediates (apply_mutable only: the captures come back in the updates).
///   model.apply(variables, {.rngs = {{"dropout", key}}}, x, true);
struct ApplyOptions {
  RngsArg rngs;
  CollectionFilter mutable_collections;
  CaptureIntermediates capture_intermediates;
};

/// Options of init(): Flax's `mutable=` (default: everything but "intermediates") and
/// `capture_intermediates=`.
///   model.init(key, {.mutable_collections = true}, x);
struct InitOptions {
  CollectionFilter mutable_collections = CollectionFilter::deny({"intermediates"});
  CaptureIntermediates capture_intermediates;
};

/// Selects a method by name for apply/init/a submodule call, so that tabulate and
/// capture_intermediates know its name (a plain member pointer works too, unnamed):
///   model.apply(variables, nn::method<&Model::encode>, x);
template <auto Fn>
struct Method {};
template <auto Fn>
inline constexpr Method<Fn> method{};

}  // namespace loom::nn
