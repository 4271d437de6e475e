// nn::Dropout (flax.linen.Dropout): the design note's example of a hyperparameter that may be
// set on the module or at call time, never both (nn::merge_param).
//
//   // as a template (deterministic fixed by the parent's train flag):
//   auto dropout = nn::Dropout{.rate = 0.1, .deterministic = !train};
//   x = dropout(x);
//   // setup style (deterministic at call time):
//   auto dropout() const { return child("dropout", nn::Dropout{.rate = 0.1}); }
//   x = dropout()(x, /*deterministic=*/!train);
//
// With dropout on, the key comes from make_rng(rng_collection) unless one is passed:
//   model.apply(variables, {.rngs = {{"dropout", loom::random::key(1)}}}, x, /*train=*/true);
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "loom/nn/module.hpp"
#include "loom/random.hpp"

namespace loom::nn {

struct Dropout : Module<Dropout> {
  double rate = 0.0;                  // the probability of dropping (not keeping)
  std::vector<int> broadcast_dims;    // axes sharing one mask value (negative from the end)
  std::optional<bool> deterministic;  // here or at call time, exactly once
  std::string rng_collection = "dropout";
  bool operator==(const Dropout&) const = default;

  /// inputs unchanged when rate == 0 or deterministic; zeros when rate == 1; else
  /// where(bernoulli(rng, 1 - rate, mask shape), inputs / (1 - rate), 0).
  Array call(const Array& inputs, std::optional<bool> deterministic = std::nullopt,
             std::optional<random::Key> rng = std::nullopt) const;
};

}  // namespace loom::nn

LOOM_NN_HASH_FIELDS(loom::nn::Dropout, m.rate, m.broadcast_dims, m.deterministic, m.rng_collection)
