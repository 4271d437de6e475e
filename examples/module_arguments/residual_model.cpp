// The note's first snippet: a Dropout *template* (Flax: partial(nn.Dropout, rate=...,
// deterministic=not train)) is made once by the parent and passed to ten ResidualBlocks, which
// never hear of train vs eval. In C++ a module value is already a template: copying it is
// `partial`, and each call creates a new submodule (ResidualBlock_i/Dropout_0).
#include <iostream>

#include "loom/loom.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
using loom::Array;

struct ResidualBlock : nn::Module<ResidualBlock> {
  nn::Dropout dropout;  // the template the parent passes in
  std::int64_t features = 4;
  Array call(const Array& x) const {
    return dropout(jnp::tanh(nn::Dense{.features = features}(x)));
  }
};

struct ResidualModel : nn::Module<ResidualModel> {
  double drop_rate = 0.5;
  Array call(Array x, bool train) const {
    auto dropout = nn::Dropout{.rate = drop_rate, .deterministic = !train};
    for (int i = 0; i < 10; ++i) x = x + ResidualBlock{.dropout = dropout}(x);
    return x;
  }
};

int main() {
  ResidualModel model{.drop_rate = 0.5};
  Array x = jnp::ones({1, 4});
  loom::Tree variables = model.init(loom::random::key(0), x, /*train=*/false);
  std::cout << "variables (the tree Flax builds for the same model):\n" << variables << "\n";
  std::cout << nn::tabulate(model, loom::random::key(0), x, false) << "\n";
  Array eval1 = model.apply(variables, x, /*train=*/false);
  Array eval2 = model.apply(variables, x, /*train=*/false);
  std::cout << "eval (deterministic):      " << eval1 << "\n";
  std::cout << "eval again (same):         " << eval2 << "\n";
  Array train = model.apply(variables, {.rngs = {{"dropout", loom::random::key(1)}}}, x, true);
  std::cout << "train, dropout key(1):     " << train << "\n";
  try {
    model.apply(variables, x, /*train=*/true);
  } catch (const loom::Error& e) {
    std::cout << "train without a dropout rng -> " << e.what() << "\n";
  }
  return 0;
}
