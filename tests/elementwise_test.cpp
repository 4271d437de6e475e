// Elementwise ops: values vs NumPy 1.24 (float32, computed with /usr/bin/python3 and pasted),
// broadcasting and promotion rules, finite-difference gradients (float64), errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;

namespace {
const Array kX = {0.5f, -1.25f, 2.0f, 3.5f};
}  // namespace

TEST(Elementwise, UnaryMatchesNumpy) {
  // numpy.exp(x) etc. for x = float32([0.5, -1.25, 2.0, 3.5]).
  EXPECT_TRUE(allclose(
      jnp::exp(kX),
      Array({1.6487212181091309, 0.2865047752857208, 7.3890557289123535, 33.11545181274414}),
      1e-6));
  EXPECT_TRUE(allclose(
      jnp::expm1(kX),
      Array({0.6487212777137756, -0.7134951949119568, 6.389056205749512, 32.11545181274414}),
      1e-6));
  EXPECT_TRUE(allclose(
      jnp::tanh(kX),
      Array({0.46211719512939453, -0.8482836484909058, 0.9640275835990906, 0.9981778860092163}),
      1e-6));
  EXPECT_TRUE(allclose(
      jnp::sin(kX),
      Array({0.4794255495071411, -0.9489846229553223, 0.9092974066734314, -0.35078322887420654}),
      1e-6));
  EXPECT_TRUE(allclose(
      jnp::cos(kX),
      Array({0.8775825500488281, 0.3153223693370819, -0.41614681482315063, -0.9364566802978516}),
      1e-6));
  Array ax = jnp::abs(kX);
  EXPECT_TRUE(allclose(
      jnp::log(ax),
      Array({-0.6931471824645996, 0.2231435477733612, 0.6931471824645996, 1.252763032913208}),
      1e-6));
  EXPECT_TRUE(allclose(
      jnp::sqrt(ax),
      Array({0.7071067690849304, 1.1180340051651, 1.4142135381698608, 1.8708287477493286}), 1e-6));
  auto l1p = jnp::log1p(kX).to_vector<float>();
  EXPECT_TRUE(std::isnan(l1p[1]));  // log1p(-1.25) is nan, as NumPy
  EXPECT_NEAR(l1p[3], 1.504077434539795, 1e-6);
  EXPECT_TRUE(allclose(jnp::rsqrt(Array({4.f, 0.25f})), Array({0.5f, 2.f})));
  EXPECT_EQ(jnp::sign(Array({-2.f, 0.f, 3.f})).to_vector<float>(), (std::vector<float>{-1, 0, 1}));
  EXPECT_EQ(jnp::sign(Array({-7, 0, 9})).to_vector<int>(), (std::vector<int>{-1, 0, 1}));
  EXPECT_EQ(jnp::abs(Array({-7, 0, 9})).to_vector<int>(), (std::vector<int>{7, 0, 9}));
  EXPECT_EQ(jnp::floor(Array({-1.5f, 2.5f})).to_vector<float>(), (std::vector<float>{-2, 2}));
  EXPECT_EQ(jnp::ceil(Array({-1.5f, 2.5f})).to_vector<float>(), (std::vector<float>{-1, 3}));
  // Integer inputs of transcendental functions compute in float32, as JAX.
  EXPECT_EQ(jnp::exp(Array({0, 1})).dtype(), DType::float32);
}

TEST(Elementwise, BroadcastingMatchesNumpy) {
  Array a = {{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}};
  Array b = {10.f, 20.f, 30.f};
  EXPECT_EQ((a * b + a).to_vector<float>(), (std::vector<float>{11, 42, 93, 44, 105, 186}));
  EXPECT_TRUE(allclose(a / b, Array({{0.1f, 0.1f, 0.1f}, {0.4f, 0.25f, 0.2f}})));
  // (2, 1) with (1, 3) -> (2, 3); (3, 1, 2) with (4, 1) -> (3, 4, 2).
  Array col = Array({{1.f}, {2.f}});
  Array row = Array({{10.f, 20.f, 30.f}});
  EXPECT_EQ((col + row).to_vector<float>(), (std::vector<float>{11, 21, 31, 12, 22, 32}));
  Array c = jnp::reshape(jnp::arange(6), {3, 1, 2});
  Array d = jnp::reshape(jnp::arange(4), {4, 1});
  Array e = c * d;
  EXPECT_EQ(e.shape(), (Shape{3, 4, 2}));
  // numpy: (arange(6).reshape(3,1,2) * arange(4).reshape(4,1))[2, 3] == [12, 15]
  EXPECT_EQ(jnp::reshape(e, {24}).to_vector<int>()[22], 12);
  EXPECT_EQ(jnp::reshape(e, {24}).to_vector<int>()[23], 15);
  // Large arrays take the threaded path and still agree.
  Array big = jnp::ones({300, 257});
  Array sum = big + jnp::arange(257).astype(DType::float32);
  EXPECT_EQ(sum.to_vector<float>()[256 + 257 * 299], 257.f);
}

TEST(Elementwise, PromotionAndWeakScalars) {
  Array i = {1, 2, 3};
  Array f = {1.f, 2.f, 3.f};
  EXPECT_EQ((i + f).dtype(), DType::float32);
  EXPECT_EQ((i * 2).dtype(), DType::int32);
  EXPECT_EQ((i * 2.0).dtype(), DType::float32);
  EXPECT_EQ((f.astype(DType::float64) + f).dtype(), DType::float64);
  EXPECT_EQ((f * 2.0).dtype(), DType::float32);  // a double scalar does not widen float32
  EXPECT_EQ((i / 2).dtype(), DType::float32);    // true division
  EXPECT_EQ((i / 2).to_vector<float>(), (std::vector<float>{0.5, 1, 1.5}));
  EXPECT_EQ((Array({true, false}) + 1).dtype(), DType::int32);
  EXPECT_EQ((i > 1).dtype(), DType::bool_);
  EXPECT_EQ((i > 1).to_vector<bool>(), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(jnp::power(Array({2, -3, 5}), Array({10, 3, 0})).to_vector<int>(),
            (std::vector<int>{1024, -27, 1}));
  // numpy 1.24 float32 power (its SIMD powf is 1 ulp from correct rounding at 3^0.5).
  EXPECT_TRUE(allclose(jnp::power(Array({2.f, 3.f, 0.5f}), Array({3.f, 0.5f, -2.f})),
                       Array({8.f, 1.732050895690918f, 4.f})));
}

TEST(Elementwise, SelectionAndNaN) {
  const float nan = std::nanf("");
  Array a = {1.f, nan, 3.f};
  Array b = {2.f, 0.f, nan};
  auto mx = jnp::maximum(a, b).to_vector<float>();
  EXPECT_EQ(mx[0], 2.f);
  EXPECT_TRUE(std::isnan(mx[1]) && std::isnan(mx[2]));  // NaN propagates, as jnp.maximum
  EXPECT_EQ(jnp::isnan(a).to_vector<bool>(), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(jnp::where(Array({true, false, true}), Array({1.f, 2.f, 3.f}), Array({-1.f}))
                .to_vector<float>(),
            (std::vector<float>{1, -1, 3}));
  // numpy: np.where([[True], [False]], [[1, 2, 3]], 0) == [[1, 2, 3], [0, 0, 0]]
  Array w = jnp::where(Array({{true}, {false}}), Array({{1.f, 2.f, 3.f}}), Array::scalar(0.f));
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{1, 2, 3, 0, 0, 0}));
  EXPECT_EQ(jnp::clip(Array({-2.f, 0.5f, 7.f}), -1, 1).to_vector<float>(),
            (std::vector<float>{-1, 0.5, 1}));
  EXPECT_EQ((Array({true, false}) && Array({true, true})).to_vector<bool>(),
            (std::vector<bool>{true, false}));
  EXPECT_EQ((!Array({true, false})).to_vector<bool>(), (std::vector<bool>{false, true}));
}

TEST(Elementwise, GradientsMatchFiniteDifferences) {
  Array x = f64({0.3, -0.7, 1.1, 2.0, -1.5, 0.9}, {2, 3});
  Array y = f64({1.3, 0.4, -0.8}, {3});
  auto check = [&](auto f) { EXPECT_TRUE(grad_matches_fd(f, x)); };
  check([&](const Array& v) { return jnp::sum(v + y); });
  check([&](const Array& v) { return jnp::sum(y - v * v); });
  check([&](const Array& v) { return jnp::sum(v * y); });
  check([&](const Array& v) { return jnp::sum(v / y + y / (v + 3.0)); });
  check([&](const Array& v) { return jnp::sum(jnp::power(v + 2.0, y)); });
  check([&](const Array& v) { return jnp::sum(jnp::power(y + 2.0, v)); });
  check([&](const Array& v) { return jnp::sum(jnp::exp(v) + jnp::tanh(v)); });
  check([&](const Array& v) { return jnp::sum(jnp::log(v * v + 1.0) + jnp::log1p(jnp::abs(v))); });
  check([&](const Array& v) { return jnp::sum(jnp::expm1(v) * jnp::sin(v) + jnp::cos(v)); });
  check([&](const Array& v) { return jnp::sum(jnp::sqrt(v * v + 1.0) + jnp::rsqrt(v * v + 1.0)); });
  check([&](const Array& v) { return jnp::sum(jnp::maximum(v, y) + jnp::minimum(v, 0.5 * y)); });
  check([&](const Array& v) { return jnp::sum(jnp::where(v > 0.0, v * v, -v)); });
  check([&](const Array& v) { return jnp::sum(jnp::clip(v, -1.0, 1.0) * v); });
  check([&](const Array& v) { return jnp::sum(jnp::square(v) + jnp::reciprocal(v + 5.0)); });
  // astype between floating dtypes is differentiable; the cotangent comes back as float64.
  Array g = loom::grad([](const Array& v) { return jnp::sum(v.astype(DType::float32) * 2.0); })(x);
  EXPECT_EQ(g.dtype(), DType::float64);
  EXPECT_EQ(g.to_vector<double>(), std::vector<double>(6, 2.0));
}

TEST(Elementwise, GradientOfTiesAndConstants) {
  // d/dx max(x, x) splits the cotangent evenly between both operands: total 1, as JAX.
  Array x = f64({1.0, 2.0}, {2});
  Array g = loom::grad([](const Array& v) { return jnp::sum(jnp::maximum(v, v)); })(x);
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{1.0, 1.0}));
  // An input the output does not depend on gets zeros.
  Array z = loom::grad([](const Array&) { return Array::scalar(3.0); })(x);
  EXPECT_EQ(z.to_vector<double>(), (std::vector<double>{0.0, 0.0}));
}

TEST(Elementwise, SignedIntegerArithmeticWraps) {
  // NumPy and XLA wrap int32 arithmetic in two's complement; loom must not overflow into UB.
  const int kMax = std::numeric_limits<int>::max(), kMin = std::numeric_limits<int>::min();
  EXPECT_EQ((Array({kMax}) + 1).to_vector<int>(), (std::vector<int>{kMin}));
  EXPECT_EQ((Array({kMin}) - 1).to_vector<int>(), (std::vector<int>{kMax}));
  EXPECT_EQ((Array({65536}) * Array({65536})).to_vector<int>(), (std::vector<int>{0}));
}

TEST(Elementwise, GradientRulesAtKinksFollowJax) {
  // jax/_src/lax/lax.py _abs_jvp_rule: select(x >= 0, g, -g), so grad(abs)(0) == 1.
  Array g = loom::grad([](const Array& v) { return jnp::sum(jnp::abs(v)); })(f64({0.0, -2.0}, {2}));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{1.0, -1.0}));
  // _pow_jvp_lhs: the base's derivative is 0 where the exponent is 0, also at base 0 (no NaN).
  Array b = f64({0.0}, {1});
  Array gp =
      loom::grad([&](const Array& v) { return jnp::sum(jnp::power(v, b)); })(f64({0.0}, {1}));
  EXPECT_EQ(gp.to_vector<double>(), (std::vector<double>{0.0}));
}

TEST(Elementwise, Errors) {
  Array a = jnp::zeros({2, 3});
  Array b = jnp::zeros({4});
  EXPECT_TRUE(throws_error([&] { (void)(a + b); }, {"add", "(2, 3)", "(4,)", "broadcast"}));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)(Array({1, 2}) + Array({1u, 2u}));
      },
      {"add", "int32", "uint32", "promote"}));
  EXPECT_TRUE(throws_error([&] { (void)jnp::exp(Array()); }, {"exp", "empty"}));
  EXPECT_TRUE(throws_error([&] { (void)(-Array({true})); }, {"negative", "bool"}));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)jnp::where(Array({true, false}), a, a);
      },
      {"where", "(2,)", "(2, 3)"}));
}

TEST(Autodiff, GradOfTreeValueAndGradAuxAndVjp) {
  loom::Tree params = {{"w", f64({1.0, 2.0}, {2})}, {"b", f64({0.5}, {1})}};
  auto loss = [](const loom::Tree& p, const Array& x) {
    return jnp::sum(p.at("w").leaf() * x + p.at("b").leaf());
  };
  Array x = f64({3.0, -1.0}, {2});
  loom::Tree g = loom::grad(loss)(params, x);
  EXPECT_EQ(g.at("w").leaf().to_vector<double>(), (std::vector<double>{3.0, -1.0}));
  EXPECT_EQ(g.at("b").leaf().to_vector<double>(), (std::vector<double>{2.0}));  // broadcast twice

  auto with_aux = [](const Array& v) { return std::make_pair(jnp::sum(v * v), v * 2.0); };
  auto [value_aux, gv] = loom::value_and_grad(with_aux, {.has_aux = true})(x);
  EXPECT_EQ(value_aux.first.item<double>(), 10.0);
  EXPECT_EQ(value_aux.second.to_vector<double>(), (std::vector<double>{6.0, -2.0}));
  EXPECT_EQ(gv.to_vector<double>(), (std::vector<double>{6.0, -2.0}));
  EXPECT_EQ(value_aux.second.node(), nullptr);  // aux carries no autodiff history

  auto [y, pullback] = loom::vjp([](const Array& v) { return v * v; }, x);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{9.0, 1.0}));
  EXPECT_EQ(pullback(f64({1.0, 10.0}, {2})).to_vector<double>(), (std::vector<double>{6.0, -20.0}));

  // stop_gradient blocks the flow.
  Array gs = loom::grad([](const Array& v) { return jnp::sum(v * loom::stop_gradient(v)); })(x);
  EXPECT_EQ(gs.to_vector<double>(), (std::vector<double>{3.0, -1.0}));
  // Inputs are untouched and nothing global remains: a fresh op records nothing.
  EXPECT_EQ((x * x).node(), nullptr);
}

TEST(Autodiff, Errors) {
  Array x = f64({1.0, 2.0}, {2});
  // Nested differentiation (JAX semantics): the inner gradient keeps its dependence on v.
  auto inner_grad_of_outer = [](const Array& v) {
    Array g = loom::grad([](const Array& w) { return jnp::sum(w * w); })(v);
    return jnp::sum(g * v);
  };
  // d/dv sum(2v * v) = 4v
  EXPECT_EQ(loom::grad(inner_grad_of_outer)(x).to_vector<double>(), (std::vector<double>{4, 8}));
  auto closes_over_outer = [](const Array& v) {
    Array g =
        loom::grad([&](const Array& w) { return jnp::sum(w * v); })(jnp::ones({2}, DType::float64));
    return jnp::sum(g);
  };
  // the inner gradient is v itself: d/dv sum(v) = 1
  EXPECT_EQ(loom::grad(closes_over_outer)(x).to_vector<double>(), (std::vector<double>{1, 1}));
  // An inner grad on values independent of the outer trace is fine.
  auto independent = [](const Array& v) {
    Array c =
        loom::grad([](const Array& w) { return jnp::sum(w * w); })(jnp::ones({2}, DType::float64));
    return jnp::sum(v * c);
  };
  EXPECT_EQ(loom::grad(independent)(x).to_vector<double>(), (std::vector<double>{2.0, 2.0}));
  EXPECT_TRUE(throws_error([&] { loom::grad([](const Array& v) { return v * v; })(x); },
                           {"grad", "scalar", "(2,)"}));
  loom::Tree t = {{"w", x}};
  EXPECT_TRUE(throws_error(
      [&] { loom::grad([](const loom::Tree& p) { return jnp::sum(p.at("v").leaf()); })(t); },
      {"missing key", "\"v\"", "\"w\""}));
}

// ---- C++ scalars in the binary functions (API fix 5): weakly typed, as Python scalars in jnp --

TEST(ScalarArguments, BinaryFunctionsAcceptScalarsOnEitherSide) {
  const Array x = Array({-1.5f, 0.0f, 2.0f});
  Array m = jnp::maximum(x, 0.0);
  EXPECT_EQ(m.dtype(), DType::float32);  // weak: x's dtype wins
  EXPECT_EQ(m.to_vector<float>(), (std::vector<float>{0.0f, 0.0f, 2.0f}));
  EXPECT_EQ(jnp::maximum(0, x).to_vector<float>(), (std::vector<float>{0.0f, 0.0f, 2.0f}));
  EXPECT_EQ(jnp::minimum(x, 1).to_vector<float>(), (std::vector<float>{-1.5f, 0.0f, 1.0f}));
  EXPECT_EQ(jnp::add(x, 1).to_vector<float>(), (std::vector<float>{-0.5f, 1.0f, 3.0f}));
  EXPECT_EQ(jnp::subtract(1.0, x).to_vector<float>(), (std::vector<float>{2.5f, 1.0f, -1.0f}));
  EXPECT_EQ(jnp::multiply(x, 2).to_vector<float>(), (std::vector<float>{-3.0f, 0.0f, 4.0f}));
  EXPECT_EQ(jnp::divide(3.0, Array({2.0f, 4.0f})).to_vector<float>(),
            (std::vector<float>{1.5f, 0.75f}));
  EXPECT_EQ(jnp::power(x, 2).to_vector<float>(), (std::vector<float>{2.25f, 0.0f, 4.0f}));
  EXPECT_EQ(jnp::power(2, Array({3.0f})).to_vector<float>(), (std::vector<float>{8.0f}));
  // float64 arrays stay float64; int32 with an int stays int32; int32 with a double is float32.
  EXPECT_EQ(jnp::multiply(f64({1, 2}, Shape{2}), 0.5).dtype(), DType::float64);
  const Array i = Array({1, 2, 3});
  EXPECT_EQ(jnp::power(i, 2).dtype(), DType::int32);
  EXPECT_EQ(jnp::power(i, 2).to_vector<int>(), (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(jnp::add(i, 0.5).dtype(), DType::float32);
  EXPECT_EQ(jnp::divide(i, 2).dtype(), DType::float32);  // true division
  EXPECT_EQ(jnp::maximum(i, 2).to_vector<int>(), (std::vector<int>{2, 2, 3}));
}

TEST(ScalarArguments, ComparisonsLogicWhereAndClip) {
  const Array x = Array({-1.0f, 0.0f, 2.0f});
  EXPECT_EQ(jnp::greater(x, 0).to_vector<bool>(), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(jnp::greater_equal(x, 0.0).to_vector<bool>(), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(jnp::less(0, x).to_vector<bool>(), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(jnp::less_equal(x, -1).to_vector<bool>(), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(jnp::equal(x, 2.0).to_vector<bool>(), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(jnp::not_equal(2, x).to_vector<bool>(), (std::vector<bool>{true, true, false}));
  // An int32 array compared with 0.5 compares in float (1 > 0.5).
  EXPECT_EQ(jnp::greater(Array({0, 1}), 0.5).to_vector<bool>(), (std::vector<bool>{false, true}));
  const Array b = Array({true, false});
  EXPECT_EQ(jnp::logical_and(b, 1).to_vector<bool>(), (std::vector<bool>{true, false}));
  EXPECT_EQ(jnp::logical_or(0, b).to_vector<bool>(), (std::vector<bool>{true, false}));
  EXPECT_EQ(jnp::logical_or(b, 0.0).to_vector<bool>(), (std::vector<bool>{true, false}));

  Array w = jnp::where(x > 0, x, 0.0);
  EXPECT_EQ(w.dtype(), DType::float32);
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{0.0f, 0.0f, 2.0f}));
  EXPECT_EQ(jnp::where(x > 0, -1, x).to_vector<float>(), (std::vector<float>{-1.0f, 0.0f, -1.0f}));
  EXPECT_EQ(jnp::where(x > 0, f64({1, 2, 3}, Shape{3}), 7).dtype(), DType::float64);
  Array s = jnp::where(x > 0, 1.0, 0.0);
  EXPECT_EQ(s.dtype(), DType::float32);
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{0.0f, 0.0f, 1.0f}));
  Array si = jnp::where(x > 0, 1, 0);
  EXPECT_EQ(si.dtype(), DType::int32);
  EXPECT_EQ(si.to_vector<int>(), (std::vector<int>{0, 0, 1}));

  const Array i = Array({-5, 3, 9});
  EXPECT_EQ(jnp::clip(i, 0, 6).dtype(), DType::int32);
  EXPECT_EQ(jnp::clip(i, 0, 6).to_vector<int>(), (std::vector<int>{0, 3, 6}));
  EXPECT_EQ(jnp::clip(i, 0.0, 6.0).dtype(), DType::float32);
  EXPECT_EQ(jnp::clip(x, 0, 1).to_vector<float>(), (std::vector<float>{0.0f, 0.0f, 1.0f}));
  // Mixed bounds: a double bound makes an integer array float32 (jnp's weak float).
  EXPECT_EQ(jnp::clip(i, 0, 6.5).dtype(), DType::float32);
  EXPECT_EQ(jnp::clip(i, -0.5, 6).to_vector<float>(), (std::vector<float>{-0.5f, 3.0f, 6.0f}));
  EXPECT_EQ(jnp::where(x > 0, 1, 0.5).to_vector<float>(), (std::vector<float>{0.5f, 0.5f, 1.0f}));
  EXPECT_EQ(jnp::where(x > 0, 0.5, 0).dtype(), DType::float32);
}

TEST(ScalarArguments, GradientsFlowThroughTheArraySide) {
  const Array x = f64({-1.0, 0.5, 2.0}, Shape{3});
  EXPECT_TRUE(grad_matches_fd([](const Array& v) { return jnp::sum(jnp::maximum(v, 0.0)); }, x));
  EXPECT_TRUE(grad_matches_fd([](const Array& v) { return jnp::sum(jnp::power(v, 3)); }, x));
  EXPECT_TRUE(grad_matches_fd([](const Array& v) { return jnp::sum(jnp::divide(1.0, v)); }, x));
  EXPECT_TRUE(
      grad_matches_fd([](const Array& v) { return jnp::sum(jnp::where(v > 0, v * v, 0.0)); }, x));
  EXPECT_TRUE(grad_matches_fd([](const Array& v) { return jnp::sum(jnp::subtract(2, v) * v); }, x));
}

TEST(ScalarArguments, Errors) {
  EXPECT_TRUE(throws_error([] { jnp::maximum(Array(), 0.0); }, {"weak_scalar"}));
  EXPECT_TRUE(throws_error([] { jnp::add(Array({1u, 2u}), -1); }, {"negative", "uint32"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::maximum(jnp::ones({2, 3}), jnp::ones({4}));
      },
      {"maximum", "(2, 3)", "(4,)"}));
}
