// The note's last section: the functional core has no attributes, only function arguments;
// hyperparameters are fixed in advance with a lambda or std::bind_front (Python's partial).
#include <functional>
#include <iostream>

#include "loom/loom.hpp"

namespace core = loom::core;
namespace jnp = loom::numpy;
namespace rnd = loom::random;
namespace init = loom::nn::initializers;
using loom::Array;

// dense(scope, x, features): a module as a plain function.
Array dense(core::Scope& scope, const Array& x, std::int64_t features) {
  Array kernel = scope.param("kernel", init::lecun_normal(), {x.shape().back(), features});
  Array bias = scope.param("bias", init::zeros_init(), {features});
  return jnp::matmul(x, kernel) + bias;
}

// dropout(scope, x, rate, deterministic): no ambiguity, everything is an argument.
Array dropout(core::Scope& scope, const Array& x, double rate, bool deterministic) {
  if (deterministic || rate == 0.0) return x;
  Array mask = rnd::bernoulli(scope.make_rng("dropout"), 1.0 - rate, x.shape());
  return jnp::where(mask, x / (1.0 - rate), jnp::zeros_like(x));
}

// A residual block whose dropout is a function with its hyperparameters already fixed.
Array residual_model(core::Scope& scope, Array x, double rate, bool train) {
  auto drop = std::bind_front(
      [](double r, bool det, core::Scope& s, const Array& in) { return dropout(s, in, r, det); },
      rate, !train);
  for (int i = 0; i < 3; ++i) {
    const std::string name = "block_" + std::to_string(i);
    auto block = [&](core::Scope& s, const Array& in) {
      return drop(s, jnp::tanh(s.child("dense", dense)(in, in.shape().back())));
    };
    x = x + scope.child(name, block)(x);
  }
  return x;
}

int main() {
  Array x = jnp::ones({1, 4});
  auto model = [](core::Scope& s, const Array& in, bool train) {
    return residual_model(s, in, /*rate=*/0.5, train);
  };
  auto [y, variables] = core::init(model)(rnd::key(0), x, false);
  std::cout << "variables:\n" << variables << "\n";
  std::cout << "eval:  " << core::apply(model)(variables, x, false) << "\n";
  std::cout << "train: " << core::apply(model, {{"dropout", rnd::key(1)}})(variables, x, true)
            << "\n";
  return 0;
}
