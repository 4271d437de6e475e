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
// rng streams are lifted as Flax's lift.checkpoint / lift.jit lift them (flax/core/lift.py pack:
// the inner scope gets the outer rngs and shares the outer scope's rng counters): the pure
// function receives the streams' keys as arguments and runs the target in an inner scope at the
// lifted module's path, starting from its counters, so a make_rng inside (Dropout) derives the
// key the plain call would, and the counts after the call are written back. Hence
// nn::remat(block) and nn::jit(block) give the same dropout bits as block at the same path.
//   auto y = child("block", nn::remat(DropoutBlock{}))(x);   // == child("block", DropoutBlock{})
// Under nn::jit the keys are traced arguments (a new key replays the same graph); the path and
// the starting counts are part of the trace's cache key (a second call of the same module in
// one apply, with advanced counts, traces once more).
//
// Where loom differs from Flax (documented limits, each a loom::Error or a plain call, never a
// silent difference):
// - With a mutable collection (BatchNorm's batch_stats while training) or under init, the
//   target's call runs directly, unlifted (same results; no memory saving, no trace).
// - Arguments are Arrays or Trees (what checkpoint and jit trace).
#pragma once

#include <concepts>
#include <functional>
#include <map>
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

struct CounterTree;  // the rng counters of a scope and its descendants (src/nn/transforms_call.cpp)

/// What a lifted call carries into its pure function besides the keys: the lifted module's path
/// and type and the rng counters of its subtree when the call starts. `signature` encodes all
/// of it (jit's static cache key: == and std::hash compare it).
struct LiftedRngs {
  std::vector<std::string> path;
  std::string module_type;
  std::shared_ptr<const CounterTree> counters;
  std::string signature;
  bool operator==(const LiftedRngs& o) const { return signature == o.signature; }
};
}  // namespace detail
}  // namespace loom::nn

template <>
struct std::hash<loom::nn::detail::LiftedRngs> {
  std::size_t operator()(const loom::nn::detail::LiftedRngs& r) const {
    return std::hash<std::string>{}(r.signature);
  }
};

namespace loom::nn {
namespace detail {

/// The snapshot of `scope` (its path, type and counters) for a lifted call.
LiftedRngs lifted_rngs(core::Scope& scope);
/// The base key of each of scope's rng streams as raw key data: {stream: uint32 (2,)}.
Tree rng_keys(const core::Scope& scope);
/// Writes counters (taken from an inner scope) back into `scope`'s subtree.
void store_counters(core::Scope& scope, const CounterTree& counters);

/// An inner root scope at the lifted module's path: the variables ({collection: subtree at the
/// module}) nested at the path, the keys as its rng streams, the counters loaded. No collection
/// is mutable (a mutable one runs unlifted).
class InnerScope {
 public:
  InnerScope(const Tree& variables, const Tree& keys, const LiftedRngs& rngs);
  ~InnerScope();
  core::Scope& scope() { return *scope_; }
  /// The counters of the inner module's subtree now (after the target ran).
  std::shared_ptr<const CounterTree> counters() const;

 private:
  std::unique_ptr<Tree> variables_;
  std::unique_ptr<core::Scope> root_;
  core::Scope* scope_ = nullptr;
};

/// The counters a lifted call ended with, filled where the target ran (a trace, for nn::jit)
/// and read by every call after, keyed by the LiftedRngs signature.
class CountersAfter {
 public:
  void put(const std::string& signature, std::shared_ptr<const CounterTree> counters);
  std::shared_ptr<const CounterTree> get(const std::string& signature) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const CounterTree>> by_signature_;
};

/// One cached value per distinct target (by operator==), for the life of the process: a
/// module built anew inside each call still finds its trace.
template <typename Fn, typename M, typename Make>
std::shared_ptr<Fn> cached_for(const M& target, const Make& make) {
  static std::mutex mutex;
  static std::vector<std::pair<M, std::shared_ptr<Fn>>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& [t, f] : cache) {
    if (t == target) return f;
  }
  auto fn = std::make_shared<Fn>(make());
  cache.emplace_back(target, fn);
  return fn;
}
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
    if (s.rngs().empty()) {
      auto pure = [target = target](const Tree& variables, const Xs&... args) {
        return target.apply(variables, args...);
      };
      return loom::checkpoint(pure)(s.variables(), xs...);
    }
    // The keys are arguments and the counters a snapshot, so the backward pass's re-run of the
    // target draws the same bits as the forward run.
    auto after = std::make_shared<std::shared_ptr<const detail::CounterTree>>();
    auto pure = [target = target, rngs = detail::lifted_rngs(s), after](
                    const Tree& variables, const Tree& keys, const Xs&... args) {
      detail::InnerScope inner(variables, keys, rngs);
      auto y = detail::run_in(inner.scope(), target, args...);
      *after = inner.counters();
      return y;
    };
    auto y = loom::checkpoint(pure)(s.variables(), detail::rng_keys(s), xs...);
    detail::store_counters(s, **after);
    return y;
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
    if (!s.rngs().empty()) return call_with_rngs(s, xs...);
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

 private:
  template <typename... Xs>
  auto call_with_rngs(core::Scope& s, const Xs&... xs) const {
    auto make = [&] {
      auto after = std::make_shared<detail::CountersAfter>();
      auto fn = loom::jit(
          [target = target, after](const Tree& variables, const Tree& keys,
                                   const detail::LiftedRngs& rngs, const Xs&... args) {
            // Runs when tracing only: the counts it ends with are kept for the replays.
            detail::InnerScope inner(variables, keys, rngs);
            auto y = detail::run_in(inner.scope(), target, args...);
            after->put(rngs.signature, inner.counters());
            return y;
          },
          {.static_argnums = {2}});
      return std::make_pair(std::move(fn), after);
    };
    using Entry = decltype(make());
    const detail::LiftedRngs rngs = detail::lifted_rngs(s);
    std::shared_ptr<Entry> entry;
    if constexpr (std::equality_comparable<M>) {
      entry = detail::cached_for<Entry>(target, make);
    } else {
      entry = std::make_shared<Entry>(make());
    }
    auto y = entry->first(s.variables(), detail::rng_keys(s), rngs, xs...);
    detail::store_counters(s, *entry->second->get(rngs.signature));
    return y;
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
