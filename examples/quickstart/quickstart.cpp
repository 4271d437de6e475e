// README's quick example as a program: a module in the design note's style, Flax's init, and a
// gradient over the params tree.
#include <iostream>

#include "loom/loom.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;

// Hyperparameters are fields; inputs and mode switches are call arguments (the design note).
struct MLP : nn::Module<MLP> {
  std::int64_t hidden = 128;
  double drop_rate = 0.1;
  loom::Array call(const loom::Array& x, bool train) const {
    auto h = jnp::tanh(nn::Dense{.features = hidden}(x));            // "Dense_0"
    h = nn::Dropout{.rate = drop_rate, .deterministic = !train}(h);  // "Dropout_0"
    return nn::Dense{.features = 10}(h);                             // "Dense_1"
  }
};

int main() {
  loom::Array x = loom::random::normal(loom::random::key(42), {4, 784});
  MLP model{.hidden = 64};
  loom::Tree variables = model.init(loom::random::key(0), x, /*train=*/false);
  std::cout << "variables:\n" << variables << "\n";

  auto loss = [&](const loom::Tree& params) {
    loom::Tree v = {{"params", params}};
    auto logits = model.apply(v, {.rngs = {{"dropout", loom::random::key(1)}}}, x, /*train=*/true);
    return jnp::mean(jnp::square(logits));
  };
  auto [value, grads] = loom::value_and_grad(loss)(variables.at("params"));
  std::cout << "loss: " << value << "\n";
  std::cout << "gradient tree (same structure as params):\n" << grads << "\n";
  std::cout << "|d loss / d Dense_1.bias|: "
            << jnp::sqrt(jnp::sum(jnp::square(grads.at("Dense_1").at("bias").leaf()))) << "\n";
  return 0;
}
