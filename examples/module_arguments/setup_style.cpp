// The note's second snippet: SomeModule declares its dropout once (Flax's setup) and passes
// `deterministic` at call time, where `train` is known. In C++ the declaration is a member
// function returning a named child: every call of dropout() reaches the same submodule.
#include <iostream>

#include "loom/loom.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
using loom::Array;

struct SomeModule : nn::Module<SomeModule> {
  double drop_rate = 0.5;
  // setup(): self.dense = nn.Dense(3); self.dropout = nn.Dropout(rate=self.drop_rate)
  auto dense() const { return child("dense", nn::Dense{.features = 3}); }
  auto dropout() const { return child("dropout", nn::Dropout{.rate = drop_rate}); }

  Array call(const Array& x, bool train) const {
    Array h = dense()(x);
    h = dropout()(h, /*deterministic=*/!train);
    return dense()(h);  // the same "dense" again: one kernel, shared
  }
};

int main() {
  SomeModule model{.drop_rate = 0.5};
  Array x = jnp::ones({2, 3});
  loom::Tree variables = model.init(loom::random::key(0), x, /*train=*/false);
  std::cout << "variables: one \"dense\" although it is called twice:\n" << variables << "\n";
  std::cout << "eval:  " << model.apply(variables, x, false) << "\n";
  std::cout << "train: "
            << model.apply(variables, {.rngs = {{"dropout", loom::random::key(2)}}}, x, true)
            << "\n";
  return 0;
}
