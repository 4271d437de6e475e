// The note's solution: a hyperparameter that may be given to the constructor *or* at call
// time, never both and never neither (nn::merge_param), so neither the train step nor the
// eval step can silently run with a forgotten default.
#include <iostream>
#include <optional>

#include "loom/loom.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
using loom::Array;

struct MyDropout : nn::Module<MyDropout> {
  double drop_rate = 0.5;
  std::optional<bool> deterministic;

  Array call(const Array& x, std::optional<bool> deterministic_arg = std::nullopt) const {
    const bool det = nn::merge_param("deterministic", deterministic, deterministic_arg);
    if (det) return x;
    // ... what nn::Dropout does; here: the same layer, with the decided flag.
    return nn::Dropout{.rate = drop_rate}(x, det);
  }
};

struct Parent : nn::Module<Parent> {
  int mode = 0;  // which way to pass `deterministic`
  Array call(const Array& x, bool train) const {
    switch (mode) {
      case 0:  // as an attribute (template style)
        return MyDropout{.deterministic = !train}(x);
      case 1:  // at call time (setup style)
        return MyDropout{}(x, !train);
      case 2:  // neither
        return MyDropout{}(x);
      default:  // both
        return MyDropout{.deterministic = !train}(x, !train);
    }
  }
};

int main() {
  Array x = jnp::ones({1, 6});
  const loom::random::Key key = loom::random::key(0);
  nn::Rngs rngs = {{"dropout", loom::random::key(3)}};
  std::cout << "attribute, train: "
            << Parent{.mode = 0}.apply(loom::Tree{}, {.rngs = rngs}, x, true) << "\n";
  std::cout << "call arg, eval:   " << Parent{.mode = 1}.apply(loom::Tree{}, x, false) << "\n";
  for (int mode : {2, 3}) {
    try {
      Parent{.mode = mode}.init(key, x, true);
    } catch (const loom::Error& e) {
      std::cout << (mode == 2 ? "neither: " : "both:    ") << e.what() << "\n";
    }
  }
  return 0;
}
