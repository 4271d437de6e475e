// Builds against an installed loom and checks one gradient: d/dx sum(x * x) = 2x.
#include <iostream>
#include <loom/loom.hpp>

int main() {
  namespace jnp = loom::numpy;
  loom::Array x = {1.0f, -2.0f, 3.0f};
  loom::Array g = loom::grad([](const loom::Array& v) { return jnp::sum(v * v); })(x);
  std::cout << g << "\n";
  const auto v = g.to_vector<float>();
  return (v[0] == 2.0f && v[1] == -4.0f && v[2] == 6.0f) ? 0 : 1;
}
