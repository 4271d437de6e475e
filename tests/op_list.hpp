// The list of loom's primitives in src/numpy, src/array.cpp and src/random: one OpCase per
// primitive (detail::bind site), named as the primitive is named, with example inputs, for the
// generated transformation tests (jvp vs finite differences, vmap vs a loop, jit vs eager, and
// tests/primitive_test.cpp, which checks that each case's call binds its primitive).
//
//   for (const loom::testing::OpCase& c : loom::testing::numpy_op_cases()) {
//     loom::Array y = c.fn(c.inputs);  // calls the public op on the inputs
//   }
//
// Conventions:
// - `inputs` of differentiable cases are float64 and lie in the op's smooth domain: away from
//   kinks, ties, branch cuts and integer jumps. Integer, bool and key (uint32) inputs of a case
//   are not differentiated (a transformation test perturbs only the floating inputs).
// - Binary elementwise cases use broadcasting shapes ((2, 3) with (3,), or with a scalar).
// - `differentiable` is false for primitives whose output is bool/int/random or whose derivative
//   is zero almost everywhere and which bind no VJP (sign, floor, ceil, comparisons).
// - Random primitives take the raw key data (uint32, shape (2,)) as their first input, so a
//   transformation sees the key as an operand.
// - jnp.matmul/dot/einsum compose lax's contraction primitive: their cases live in
//   tests/op_list_lax_nn.hpp with the lax ops.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loom/loom.hpp"

namespace loom::testing {

struct OpCase {
  std::string name;  // the primitive's name (detail::Primitive::name)
  std::function<loom::Array(const std::vector<loom::Array>&)> fn;
  std::vector<loom::Array> inputs;
  bool differentiable;
};

namespace op_list_detail {

// Deterministic float64 values sin(0.37 i + phase) * scale + offset (inputs only).
inline Array wave64(Shape shape, double phase, double scale = 1.0, double offset = 0.0) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = std::sin(0.37 * double(i) + phase) * scale + offset;
  return Array(v, shape, DType::float64);
}

inline Array ints(std::vector<std::int32_t> v, Shape shape) {
  return Array(v, shape, DType::int32);
}

inline Array bools(std::vector<int> v, Shape shape) {
  return Array(v, shape, DType::bool_);
}

}  // namespace op_list_detail

/// Every primitive of jnp (src/numpy), Array::astype and jax.random, with example inputs.
inline std::vector<OpCase> numpy_op_cases() {
  namespace jnp = loom::numpy;
  namespace rnd = loom::random;
  using op_list_detail::bools;
  using op_list_detail::ints;
  using op_list_detail::wave64;
  using In = const std::vector<Array>&;
  std::vector<OpCase> c;

  // ---- binary elementwise (broadcasting (2, 3) with (3,)) ----
  const Array a23 = wave64({2, 3}, 0.1);
  const Array b3 = wave64({3}, 1.3);
  // b3 values: sin(1.3), sin(1.67), sin(2.04): all > 0.8, no ties with a23 (|a23| values differ).
  const Array pos23 = wave64({2, 3}, 0.2, 0.5, 1.5);  // in [1, 2]
  const Array pos3 = wave64({3}, 0.9, 0.3, 1.0);      // in [0.7, 1.3]
  c.push_back({"add", [](In in) { return jnp::add(in[0], in[1]); }, {a23, b3}, true});
  c.push_back({"subtract", [](In in) { return jnp::subtract(in[0], in[1]); }, {a23, b3}, true});
  c.push_back({"multiply", [](In in) { return jnp::multiply(in[0], in[1]); }, {a23, b3}, true});
  c.push_back({"divide", [](In in) { return jnp::divide(in[0], in[1]); }, {a23, pos3}, true});
  c.push_back({"power", [](In in) { return jnp::power(in[0], in[1]); }, {pos23, pos3}, true});
  c.push_back({"maximum",
               [](In in) { return jnp::maximum(in[0], in[1]); },
               {a23, wave64({3}, 2.0, 0.5)},
               true});
  c.push_back({"minimum",
               [](In in) { return jnp::minimum(in[0], in[1]); },
               {a23, wave64({3}, 2.0, 0.5)},
               true});
  // Comparisons: float inputs with a tie (0.5 == 0.5) so equal is not all-false.
  const Array cmp_a =
      Array(std::vector<double>{0.5, -1.0, 2.0, 0.25, 3.0, -0.5}, Shape{2, 3}, DType::float64);
  const Array cmp_b = Array(std::vector<double>{0.5, 0.0, 2.5}, Shape{3}, DType::float64);
  c.push_back({"equal", [](In in) { return jnp::equal(in[0], in[1]); }, {cmp_a, cmp_b}, false});
  c.push_back(
      {"not_equal", [](In in) { return jnp::not_equal(in[0], in[1]); }, {cmp_a, cmp_b}, false});
  c.push_back({"less", [](In in) { return jnp::less(in[0], in[1]); }, {cmp_a, cmp_b}, false});
  c.push_back(
      {"less_equal", [](In in) { return jnp::less_equal(in[0], in[1]); }, {cmp_a, cmp_b}, false});
  c.push_back({"greater", [](In in) { return jnp::greater(in[0], in[1]); }, {cmp_a, cmp_b}, false});
  c.push_back({"greater_equal",
               [](In in) { return jnp::greater_equal(in[0], in[1]); },
               {cmp_a, cmp_b},
               false});
  const Array bool23 = bools({1, 0, 1, 1, 0, 0}, {2, 3});
  const Array bool3 = bools({1, 1, 0}, {3});
  c.push_back({"logical_and",
               [](In in) { return jnp::logical_and(in[0], in[1]); },
               {bool23, bool3},
               false});
  c.push_back(
      {"logical_or", [](In in) { return jnp::logical_or(in[0], in[1]); }, {bool23, bool3}, false});
  // Integer arithmetic (wrapping int32) goes through the same primitive as float.
  c.push_back({"add",
               [](In in) { return jnp::add(in[0], in[1]); },
               {ints({1, -2, 3, 4, 5, -6}, {2, 3}), ints({7, 8, -9}, {3})},
               false});
  c.push_back({"multiply",
               [](In in) { return jnp::multiply(in[0], in[1]); },
               {ints({1, -2, 3, 4, 5, -6}, {2, 3}), Array::scalar<std::int32_t>(3)},
               false});

  // ---- unary elementwise ----
  const Array x23 = wave64({2, 3}, 0.3);             // in [-1, 1], none at 0
  const Array xpos = wave64({2, 3}, 0.3, 0.4, 1.0);  // in [0.6, 1.4]
  const Array xoff = wave64({2, 3}, 0.3, 0.4, 0.5);  // |x| >= 0.1, away from integers
  c.push_back({"negative", [](In in) { return jnp::negative(in[0]); }, {x23}, true});
  c.push_back({"exp", [](In in) { return jnp::exp(in[0]); }, {x23}, true});
  c.push_back({"log", [](In in) { return jnp::log(in[0]); }, {xpos}, true});
  c.push_back({"log1p", [](In in) { return jnp::log1p(in[0]); }, {x23 * 0.5}, true});
  c.push_back({"expm1", [](In in) { return jnp::expm1(in[0]); }, {x23}, true});
  c.push_back({"sqrt", [](In in) { return jnp::sqrt(in[0]); }, {xpos}, true});
  c.push_back({"rsqrt", [](In in) { return jnp::rsqrt(in[0]); }, {xpos}, true});
  c.push_back({"abs", [](In in) { return jnp::abs(in[0]); }, {xoff}, true});
  c.push_back({"sign", [](In in) { return jnp::sign(in[0]); }, {xoff}, false});
  c.push_back({"tanh", [](In in) { return jnp::tanh(in[0]); }, {x23}, true});
  c.push_back({"sin", [](In in) { return jnp::sin(in[0]); }, {x23}, true});
  c.push_back({"cos", [](In in) { return jnp::cos(in[0]); }, {x23}, true});
  c.push_back({"floor", [](In in) { return jnp::floor(in[0]); }, {xoff * 3.0}, false});
  c.push_back({"ceil", [](In in) { return jnp::ceil(in[0]); }, {xoff * 3.0}, false});
  c.push_back({"isfinite", [](In in) { return jnp::isfinite(in[0]); }, {x23}, false});
  c.push_back(
      {"where", [](In in) { return jnp::where(in[0], in[1], in[2]); }, {bool23, a23, b3}, true});
  c.push_back({"astype",
               [](In in) { return in[0].astype(DType::float64); },
               {ints({1, -2, 3}, {3})},
               false});
  // float64 -> float32 is differentiable, but float32 rounding swamps a float64 finite
  // difference; autodiff_test checks its VJP.
  c.push_back({"astype", [](In in) { return in[0].astype(DType::float32); }, {x23}, false});

  // ---- manipulation ----
  const Array m234 = wave64({2, 3, 4}, 0.7);
  c.push_back({"reshape", [](In in) { return jnp::reshape(in[0], {4, 6}); }, {m234}, true});
  c.push_back({"transpose", [](In in) { return jnp::transpose(in[0], {2, 0, 1}); }, {m234}, true});
  c.push_back({"broadcast_to",
               [](In in) {
                 return jnp::broadcast_to(in[0], {2, 4, 3});
               },
               {b3},
               true});
  c.push_back({"concatenate",
               [](In in) {
                 return jnp::concatenate({in[0], in[1]}, 1);
               },
               {a23, wave64({2, 2}, 0.4)},
               true});
  c.push_back({"slice",
               [](In in) {
                 return jnp::slice(
                     in[0], {jnp::Slice{1, std::nullopt, 1},
                             jnp::Slice{std::nullopt, std::nullopt, -2}, jnp::Slice{0, 3, 2}});
               },
               {m234},
               true});
  c.push_back({"pad", [](In in) { return jnp::pad(in[0], {{1, 0}, {2, 1}}, 0.5); }, {a23}, true});
  c.push_back({"take",
               [](In in) { return jnp::take(in[0], in[1], 1); },
               {m234, ints({2, 0, 2, -1}, {2, 2})},
               true});
  c.push_back({"take_along_axis",
               [](In in) { return jnp::take_along_axis(in[0], in[1], 1); },
               {a23, ints({2, 0, 1, 1}, {2, 2})},
               true});
  c.push_back({"one_hot",
               [](In in) { return jnp::one_hot(in[0], 4, DType::float64); },
               {ints({0, 3, 1, -1, 2, 4}, {2, 3})},
               false});

  // ---- reductions ----
  c.push_back({"sum", [](In in) { return jnp::sum(in[0], {0, 2}); }, {m234}, true});
  c.push_back({"mean", [](In in) { return jnp::mean(in[0], 1, true); }, {m234}, true});
  c.push_back({"var", [](In in) { return jnp::var(in[0], 2, false, 1); }, {m234}, true});
  c.push_back({"std", [](In in) { return jnp::std(in[0], {0, 1}); }, {m234}, true});
  c.push_back({"max", [](In in) { return jnp::max(in[0], 1); }, {m234}, true});
  c.push_back({"min", [](In in) { return jnp::min(in[0], {0, 2}, true); }, {m234}, true});
  c.push_back({"prod",
               [](In in) { return jnp::prod(in[0], 2); },
               {wave64({2, 3, 4}, 0.7, 0.5, 1.0)},
               true});
  c.push_back({"logsumexp", [](In in) { return jnp::logsumexp(in[0], 1); }, {m234}, true});
  c.push_back({"argmax", [](In in) { return jnp::argmax(in[0], 1); }, {m234}, false});
  c.push_back({"argmin", [](In in) { return jnp::argmin(in[0]); }, {m234}, false});
  c.push_back({"any", [](In in) { return jnp::any(in[0], 1); }, {bool23}, false});
  c.push_back({"all", [](In in) { return jnp::all(in[0], 0); }, {bool23}, false});

  // ---- random (the key's raw uint32 data is input 0) ----
  const Array key = rnd::key(42).data();
  c.push_back({"threefry2x32",
               [](In in) { return rnd::threefry_2x32(rnd::Key(in[0]), in[1]); },
               {key, Array(std::vector<std::uint32_t>{0, 1, 2, 3, 4}, Shape{5})},
               false});
  c.push_back({"random_bits",
               [](In in) {
                 return rnd::bits(rnd::Key(in[0]), {2, 3});
               },
               {key},
               false});
  c.push_back(
      {"random_split", [](In in) { return rnd::split(rnd::Key(in[0]), 3).data(); }, {key}, false});
  c.push_back({"random_fold_in",
               [](In in) { return rnd::fold_in(rnd::Key(in[0]), 7).data(); },
               {key},
               false});
  c.push_back({"random_uniform",
               [](In in) {
                 return rnd::uniform(rnd::Key(in[0]), {2, 3}, DType::float32, -1, 2);
               },
               {key},
               false});
  c.push_back({"random_normal",
               [](In in) { return rnd::normal(rnd::Key(in[0]), {4}, DType::float64); },
               {key},
               false});
  c.push_back({"random_truncated_normal",
               [](In in) { return rnd::truncated_normal(rnd::Key(in[0]), -1.5, 2.0, {3}); },
               {key},
               false});
  c.push_back(
      {"random_gumbel", [](In in) { return rnd::gumbel(rnd::Key(in[0]), {3}); }, {key}, false});
  c.push_back({"random_randint",
               [](In in) { return rnd::randint(rnd::Key(in[0]), {5}, -3, 10); },
               {key},
               false});
  c.push_back({"random_categorical",
               [](In in) { return rnd::categorical(rnd::Key(in[0]), in[1], -1); },
               {key, wave64({2, 3}, 0.5)},
               false});
  c.push_back({"random_permutation",
               [](In in) { return rnd::permutation(rnd::Key(in[0]), 6); },
               {key},
               false});
  c.push_back({"random_shuffle",
               [](In in) { return rnd::permutation(rnd::Key(in[0]), in[1], 1, true); },
               {key, a23},
               false});
  c.push_back({"random_choice",
               [](In in) { return rnd::choice(rnd::Key(in[0]), 5, {3}, false); },
               {key},
               false});
  c.push_back({"random_bernoulli",
               [](In in) { return rnd::bernoulli(rnd::Key(in[0]), 0.3, Shape{4}); },
               {key},
               false});
  c.push_back({"random_bernoulli",
               [](In in) { return rnd::bernoulli(rnd::Key(in[0]), in[1]); },
               {key, wave64({2, 3}, 0.1, 0.4, 0.5)},
               false});
  c.push_back({"random_key_index",
               [](In in) { return rnd::Key(in[0])[1].data(); },
               {rnd::split(rnd::key(42), 3).data()},
               false});
  return c;
}

}  // namespace loom::testing
