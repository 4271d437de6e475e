// Linen's lifted transforms of one call: nn::remat (flax.linen.remat / checkpoint) and nn::jit
// (flax.linen.jit). The lifted module is the target itself under Flax's lifted class name
// ("CheckpointDense_0", "JitDense_0"): its variables tree is the target's, at the lifted
// module's path, and init runs the target's call directly.
//
//   namespace nn = loom::nn;
//   struct Block : nn::Module<Block> {
//     loom::Array call(const loom::Array& x) const {
//       auto h = nn::remat(nn::Dense{.features = 64})(x);   // params/CheckpointDense_0/kernel
//       return nn::jit(nn::Dense{.features = 10})(jnp::tanh(h));   // params/JitDense_0/...
//     }
//   };
//
// In apply, the target runs as a pure function of the lifted module's variables and the call's
// arguments: under loom::checkpoint for remat (the backward pass recomputes the target's
// forward instead of keeping its residuals; gradients equal the plain ones) and under
// loom::jit for jit (traced once per target value and argument signature, then replayed without
// module or scope work). The trace cache is keyed by the target's operator== (every loom layer
// has one); a target type without operator== is traced on every call (correct, not faster).
//
// Where loom differs from Flax (documented limits, each a loom::Error or a plain call, never a
// silent difference):
// - The pure function receives no rng streams: a target that calls make_rng (Dropout) under
//   remat/jit raises loom's error for a missing rng. Use the transforms on deterministic parts.
// - With a mutable collection (BatchNorm's batch_stats while training) or under init, the
//   target's call runs directly, unlifted (same results; no memory saving, no trace).
// - Arguments are Arrays or Trees (what checkpoint and jit trace).
#pragma once

#include <concepts>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "loom/autodiff.hpp"
#include "loom/jit.hpp"
#include "loom/nn/module.hpp"
#include "loom/tree.hpp"

namespace loom::nn {

namespace detail {
/// True when the lifted call must run the target directly: init, or a mutable collection.
bool run_unlifted(const core::Scope& scope);
}  // namespace detail

/// The module nn::remat(target) returns.
template <typename M>
struct Remat : Module<Remat<M>> {
  M target;

  static std::string loom_type_name() { return "Checkpoint" + detail::type_name<M>(); }

  template <typename... Xs>
  auto call(const Xs&... xs) const {
    core::Scope& s = this->scope("nn.remat");
    if (detail::run_unlifted(s)) return detail::run_in(s, target, xs...);
    auto pure = [target = target](const Tree& variables, const Xs&... args) {
      return target.apply(variables, args...);
    };
    return loom::checkpoint(pure)(s.variables(), xs...);
  }
};

/// The module nn::jit(target) returns.
template <typename M>
struct Jit : Module<Jit<M>> {
  M target;

  static std::string loom_type_name() { return "Jit" + detail::type_name<M>(); }

  template <typename... Xs>
  auto call(const Xs&... xs) const {
    core::Scope& s = this->scope("nn.jit");
    if (detail::run_unlifted(s)) return detail::run_in(s, target, xs...);
    auto make = [&] {
      return loom::jit([target = target](const Tree& variables, const Xs&... args) {
        return target.apply(variables, args...);
      });
    };
    using Fn = decltype(make());
    if constexpr (std::equality_comparable<M>) {
      // One jitted function per distinct target value, for the life of the process (a module
      // built anew inside each call still finds its trace).
      static std::mutex mutex;
      static std::vector<std::pair<M, std::shared_ptr<Fn>>> cache;
      std::shared_ptr<Fn> fn;
      {
        std::lock_guard<std::mutex> lock(mutex);
        for (const auto& [t, f] : cache) {
          if (t == target) fn = f;
        }
        if (!fn) {
          fn = std::make_shared<Fn>(make());
          cache.emplace_back(target, fn);
        }
      }
      return (*fn)(s.variables(), xs...);
    } else {
      // Without operator== the target cannot be recognised again: traced on every call.
      return make()(s.variables(), xs...);
    }
  }
};

/// flax.linen.remat (nn.checkpoint): the target with its forward recomputed in the backward.
template <typename M>
Remat<M> remat(M target) {
  return Remat<M>{.target = std::move(target)};
}

/// flax.linen.jit: the target's apply traced once per argument signature and replayed.
template <typename M>
Jit<M> jit(M target) {
  return Jit<M>{.target = std::move(target)};
}

}  // namespace loom::nn
