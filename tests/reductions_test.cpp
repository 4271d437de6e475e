// loom::numpy reductions: values (NumPy 1.24 or hand computation), dtypes, errors, gradients.
// Expected values marked "NumPy" were computed with Debian's python3-numpy 1.24 from the same
// inputs (e.g. np.var(x, 1, ddof=1)) and pasted here.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::numpy::Axes;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// The 3x4 float64 input used for the NumPy comparisons.
Array x34() {
  return f64({0.5, -1.25, 3.0, 2.0, 4.5, 0.25, -2.0, 1.0, -0.75, 6.0, 1.5, -3.5}, {3, 4});
}

// A (2, 3, 4) float32 array holding 0..23.
Array t234() {
  return jnp::reshape(jnp::arange(0, 24, 1, DType::float32), {2, 3, 4});
}

// sum(y * w) with fixed, distinct weights: a scalar that depends on every output element.
Array weighted(const Array& y) {
  Array w = jnp::sin(jnp::arange(1, static_cast<double>(y.size()) + 1, 1, DType::float64));
  return jnp::sum(y * jnp::reshape(w, y.shape().to_vector()));
}

}  // namespace

// ---- sum ------------------------------------------------------------------------------------

TEST(Sum, AxesKeepdimsAndNegativeAxes) {
  Array t = t234();
  EXPECT_EQ(jnp::sum(t).item<double>(), 276.0);  // 0 + 1 + ... + 23
  EXPECT_EQ(jnp::sum(t).shape(), Shape{});
  // NumPy: t.sum((0, 2)) (non-adjacent axes: the transposing path).
  EXPECT_TRUE(allclose(jnp::sum(t, {0, 2}), Array({60.f, 92.f, 124.f})));
  EXPECT_TRUE(allclose(jnp::sum(t, {2, 0}), Array({60.f, 92.f, 124.f})));
  // NumPy: t.sum(-1), t.sum((0, 1)).
  EXPECT_TRUE(allclose(jnp::sum(t, -1), Array({{6.f, 22.f, 38.f}, {54.f, 70.f, 86.f}})));
  EXPECT_TRUE(allclose(jnp::sum(t, {0, 1}), Array({60.f, 66.f, 72.f, 78.f})));
  EXPECT_TRUE(allclose(jnp::sum(t, {-3, -2}), Array({60.f, 66.f, 72.f, 78.f})));
  EXPECT_EQ(jnp::sum(t, {0, 2}, true).shape(), (Shape{1, 3, 1}));
  EXPECT_EQ(jnp::sum(t, std::vector<int>{}, false).shape(), (Shape{2, 3, 4}));  // axis=()
  EXPECT_EQ(jnp::sum(t, Axes{}, true).shape(), (Shape{1, 1, 1}));
  // Middle axis (O, R, I all > 1): sum over axis 1 of 0..23 reshaped (2, 3, 4).
  EXPECT_TRUE(
      allclose(jnp::sum(t, 1), Array({{12.f, 15.f, 18.f, 21.f}, {48.f, 51.f, 54.f, 57.f}})));
  // Size-1 axes between reduced ones do not force a transpose, and give the same values.
  Array u = jnp::reshape(t, {2, 1, 3, 4});
  EXPECT_TRUE(allclose(jnp::sum(u, {0, 2}), Array({{60.f, 66.f, 72.f, 78.f}})));  // = t.sum((0, 1))
  // Scalar input.
  EXPECT_EQ(jnp::sum(Array::scalar(2.5f)).item<float>(), 2.5f);
}

TEST(Sum, DtypesFollowJax) {
  Array i = {{3, -7, 2}, {5, 1, -4}};
  Array s = jnp::sum(i, 0);
  EXPECT_EQ(s.dtype(), DType::int32);
  EXPECT_EQ(s.to_vector<int>(), (std::vector<int>{8, -6, -2}));
  Array b = {true, false, true, true};
  EXPECT_EQ(jnp::sum(b).dtype(), DType::int32);
  EXPECT_EQ(jnp::sum(b).item<int>(), 3);
  Array u(std::vector<std::uint32_t>{4u, 5u}, Shape{2});
  EXPECT_EQ(jnp::sum(u).dtype(), DType::uint32);
  EXPECT_EQ(jnp::sum(u).item<std::uint32_t>(), 9u);
  EXPECT_EQ(jnp::sum(x34()).dtype(), DType::float64);
  // int32 sums wrap around as XLA's do (no undefined behaviour).
  Array big = {std::numeric_limits<std::int32_t>::max(), 1};
  EXPECT_EQ(jnp::sum(big).item<std::int32_t>(), std::numeric_limits<std::int32_t>::min());
}

TEST(Sum, EmptyReductionsGiveZero) {
  Array e = jnp::zeros({0, 3});
  EXPECT_TRUE(allclose(jnp::sum(e, 0), jnp::zeros({3})));
  EXPECT_EQ(jnp::sum(e, 1).shape(), (Shape{0}));
  EXPECT_EQ(jnp::sum(e).item<float>(), 0.f);
  EXPECT_EQ(jnp::sum(jnp::zeros({0}, DType::int32)).item<int>(), 0);
  EXPECT_EQ(jnp::prod(jnp::zeros({0})).item<float>(), 1.f);
}

TEST(Sum, Float32IsAccurate) {
  // 10^6 copies of 0.1f: exact value 10^6 * 0.100000001490116... = 100000.0014901161.
  // Sequential float32 accumulation gives 100958.34; NumPy's pairwise gives 100000.086.
  Array x = jnp::full({1000000}, 0.1);
  EXPECT_NEAR(jnp::sum(x).item<double>(), 100000.0014901161, 0.1);
  // The same along axis 0 of (10^6, 2) (the row-wise kernel, split in parallel parts).
  Array y = jnp::full({1000000, 2}, 0.1);
  EXPECT_TRUE(allclose(jnp::sum(y, 0), Array({100000.0014901161, 100000.0014901161}), 1e-6, 0));
  EXPECT_NEAR(jnp::mean(x).item<double>(), 0.1, 1e-7);
}

TEST(Sum, LargeArraysEveryKernelPath) {
  // Small-integer values make every summation order exact, so each path can be compared with a
  // float64 reference computed here.
  auto check = [](std::int64_t n, std::int64_t k) {
    std::vector<float> v(static_cast<std::size_t>(n * k));
    std::vector<double> rows(static_cast<std::size_t>(n), 0), cols(static_cast<std::size_t>(k), 0);
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t j = 0; j < k; ++j) {
        const float val = static_cast<float>((i * 7 + j * 3) % 11) - 5.f;
        v[std::size_t(i * k + j)] = val;
        rows[std::size_t(i)] += val;
        cols[std::size_t(j)] += val;
      }
    }
    Array x(v, Shape{n, k});
    EXPECT_TRUE(allclose(jnp::sum(x, 1), Array(rows, Shape{n}), 0, 0)) << n << "x" << k;
    EXPECT_TRUE(allclose(jnp::sum(x, 0), Array(cols, Shape{k}), 0, 0)) << n << "x" << k;
    double total = 0;
    for (double r : rows) total += r;
    EXPECT_EQ(jnp::sum(x).item<double>(), total);
  };
  check(5, 7);
  check(3000, 37);   // parallel over rows / tiled columns
  check(200000, 3);  // few outputs: parallel split of the reduced axis
  check(40, 3000);   // wide rows: column tiles
  check(1, 300000);  // one long row
  check(70000, 1);
}

// ---- mean, var, std ---------------------------------------------------------------------------

TEST(Mean, ValuesAndIntegerPromotion) {
  // NumPy: x.mean(0)
  EXPECT_TRUE(allclose(jnp::mean(x34(), 0), f64({1.4166666666666667, 1.6666666666666667,
                                                 0.8333333333333334, -0.16666666666666666},
                                                {4})));
  Array i = {{3, -7, 2}, {5, 1, -4}};
  Array m = jnp::mean(i, 1);
  EXPECT_EQ(m.dtype(), DType::float32);
  EXPECT_TRUE(allclose(m, Array({-0.6666666865348816f, 0.6666666865348816f})));
  EXPECT_EQ(jnp::mean(Array({true, false, true, true})).dtype(), DType::float32);
  EXPECT_DOUBLE_EQ(jnp::mean(Array({true, false, true, true})).item<double>(), 0.75);
  EXPECT_TRUE(std::isnan(jnp::mean(jnp::zeros({0})).item<double>()));  // 0 / 0, as NumPy
}

TEST(Var, ValuesDdofAndStd) {
  Array x = x34();
  // NumPy: x.var(1), x.var(1, ddof=1), x.std(0), x.std(ddof=1), x.var()
  EXPECT_TRUE(allclose(jnp::var(x, 1), f64({2.57421875, 5.44921875, 12.10546875}, {3}), 1e-12));
  EXPECT_TRUE(allclose(jnp::var(x, 1, false, 1),
                       f64({3.4322916666666665, 7.265625, 16.140625}, {3}), 1e-12));
  EXPECT_TRUE(allclose(
      jnp::std(x, 0),
      f64({2.2391714737574007, 3.1247222098754457, 2.094967514996089, 2.3921166824012206}, {4}),
      1e-12));
  EXPECT_NEAR(jnp::std(x, {}, false, 1).item<double>(), 2.707575651591458, 1e-12);
  EXPECT_NEAR(jnp::var(x).item<double>(), 6.720052083333333, 1e-12);
  EXPECT_EQ(jnp::var(x, 1, true).shape(), (Shape{3, 1}));
  // Integers give float32. NumPy: np.array([[3, -7, 2], [5, 1, -4]]).var(0)
  Array iv = jnp::var(Array({{3, -7, 2}, {5, 1, -4}}), 0);
  EXPECT_EQ(iv.dtype(), DType::float32);
  EXPECT_TRUE(allclose(iv, Array({1.f, 16.f, 9.f})));
  // Two-pass: a large offset does not destroy a small variance (one-pass E[x^2]-E[x]^2 would).
  Array off = jnp::full({1000}, 1e4) + jnp::sin(jnp::arange(0, 1000, 1, DType::float32));
  double ref_mean = 0, ref_var = 0;
  for (int k = 0; k < 1000; ++k) ref_mean += std::sin(double(float(k)));
  ref_mean /= 1000;
  for (int k = 0; k < 1000; ++k) ref_var += std::pow(std::sin(double(float(k))) - ref_mean, 2);
  ref_var /= 1000;
  EXPECT_NEAR(jnp::var(off).item<double>(), ref_var, 2e-3);
  // ddof >= count gives nan, as jnp.var (jax/_src/numpy/reductions.py, _var:
  // `_where(normalizer > 0, result, np.nan)`; NumPy would give inf for the first one).
  EXPECT_TRUE(std::isnan(jnp::var(Array({1.0, 2.0}), {}, false, 2).item<double>()));
  EXPECT_TRUE(std::isnan(jnp::std(Array({1.0, 2.0}), {}, false, 3).item<double>()));
  EXPECT_TRUE(std::isnan(jnp::var(Array({1.0}), {}, false, 1).item<double>()));
  EXPECT_TRUE(std::isnan(jnp::var(jnp::zeros({0})).item<double>()));
}

// ---- max, min, prod, logsumexp ---------------------------------------------------------------

TEST(MaxMin, ValuesNanAndDtypes) {
  Array t = t234();
  EXPECT_TRUE(allclose(jnp::max(t, {0, 2}), Array({15.f, 19.f, 23.f})));  // NumPy
  EXPECT_TRUE(allclose(jnp::min(t, -1), Array({{0.f, 4.f, 8.f}, {12.f, 16.f, 20.f}})));
  EXPECT_EQ(jnp::max(t).item<float>(), 23.f);
  Array nan_row = f64({1, kNaN, 3, -1, -2, -3}, {2, 3});
  auto mx = jnp::max(nan_row, 1).to_vector<double>();
  EXPECT_TRUE(std::isnan(mx[0]));
  EXPECT_EQ(mx[1], -1.0);
  EXPECT_TRUE(std::isnan(jnp::min(nan_row).item<double>()));
  auto mn0 = jnp::min(nan_row, 0).to_vector<double>();
  EXPECT_EQ(mn0[0], -1.0);
  EXPECT_TRUE(std::isnan(mn0[1]));
  Array i = {{3, -7, 2}, {5, 1, -4}};
  EXPECT_EQ(jnp::max(i, 0).dtype(), DType::int32);
  EXPECT_EQ(jnp::max(i, 0).to_vector<int>(), (std::vector<int>{5, 1, 2}));
  EXPECT_EQ(jnp::min(i).item<int>(), -7);
  EXPECT_EQ(jnp::max(Array({false, true})).dtype(), DType::bool_);
  EXPECT_TRUE(jnp::max(Array({false, true})).item<bool>());
  EXPECT_EQ(jnp::max(f64({-kInf, -kInf}, {2})).item<double>(), -kInf);
  // A big array (vectorized lanes and parallel path).
  Array big = -jnp::abs(jnp::arange(0, 100000, 1, DType::float32) - 77777.0);
  EXPECT_EQ(jnp::argmax(big).item<int>(), 77777);
  EXPECT_EQ(jnp::max(big).item<float>(), 0.f);
  EXPECT_EQ(jnp::min(big).item<float>(), -77777.f);
  EXPECT_EQ(jnp::argmin(big).item<int>(), 0);
}

TEST(MaxMin, EmptyIsAnError) {
  EXPECT_TRUE(throws_error([] { jnp::max(jnp::zeros({0})); }, {"max", "zero-size", "(0,)"}));
  EXPECT_TRUE(throws_error([] { jnp::min(jnp::zeros({3, 0}), 1); }, {"min", "(3, 0)"}));
  // Reducing a non-empty axis of an empty array is fine: the result is empty.
  EXPECT_EQ(jnp::max(jnp::zeros({0, 3}), 1).shape(), (Shape{0}));
}

TEST(Prod, Values) {
  // NumPy: x.prod(1)
  EXPECT_TRUE(allclose(jnp::prod(x34(), 1), f64({-3.75, -2.25, 23.625}, {3})));
  Array p = jnp::prod(Array({{3, -7, 2}, {5, 1, -4}}), 0);
  EXPECT_EQ(p.dtype(), DType::int32);
  EXPECT_EQ(p.to_vector<int>(), (std::vector<int>{15, -7, -8}));
  EXPECT_EQ(jnp::prod(Array({true, true})).dtype(), DType::int32);
}

TEST(Logsumexp, ValuesAndStability) {
  Array x = x34();
  // NumPy: np.log(np.exp(x).sum(1)), ...sum(0), ...sum()
  EXPECT_TRUE(allclose(jnp::logsumexp(x, 1),
                       f64({3.3813286012269783, 4.544939958320176, 6.012279031175067}, {3}),
                       1e-12));
  EXPECT_TRUE(allclose(
      jnp::logsumexp(x, 0),
      f64({4.523289831384831, 6.003885397244115, 3.206906933673413, 2.3162449026228398}, {4}),
      1e-12));
  EXPECT_NEAR(jnp::logsumexp(x).item<double>(), 6.276601457288799, 1e-12);
  EXPECT_NEAR(jnp::logsumexp(x, {0, 1}, true).item<double>(), 6.276601457288799, 1e-12);
  // Large values do not overflow: log(e^1000 + e^1000) = 1000 + log 2.
  EXPECT_NEAR(jnp::logsumexp(Array({1000.f, 1000.f})).item<double>(), 1000 + std::log(2.0), 1e-3);
  EXPECT_NEAR(jnp::logsumexp(Array({-1000.f, -1000.f})).item<double>(), -1000 + std::log(2.0),
              1e-3);
  // As JAX: a row of -inf gives -inf, a row holding +inf gives +inf, NaN propagates.
  auto r = jnp::logsumexp(f64({-kInf, -kInf, kInf, 1, kNaN, 1, -kInf, 0}, {4, 2}), 1)
               .to_vector<double>();
  EXPECT_EQ(r[0], -kInf);
  EXPECT_EQ(r[1], kInf);
  EXPECT_TRUE(std::isnan(r[2]));
  EXPECT_DOUBLE_EQ(r[3], 0.0);
  EXPECT_EQ(jnp::logsumexp(jnp::zeros({0})).item<double>(), -kInf);
  // Integers compute in float32.
  EXPECT_EQ(jnp::logsumexp(Array({1, 2})).dtype(), DType::float32);
  EXPECT_NEAR(jnp::logsumexp(Array({1, 2})).item<double>(), 2.3132616875182228, 1e-6);
}

// ---- argmax, argmin, any, all -------------------------------------------------------------------

TEST(Argmax, FirstOccurrenceInt32) {
  Array y = {{1.f, 5.f, 5.f, -2.f}, {7.f, 7.f, 0.f, 7.f}};
  // NumPy: argmax(y, 1) = [1 0], argmin(y, 1) = [3 2], argmax(y, 0) = [1 1 0 1],
  // argmax(y) = 4, argmin(y) = 3.
  EXPECT_EQ(jnp::argmax(y, 1).dtype(), DType::int32);
  EXPECT_EQ(jnp::argmax(y, 1).to_vector<int>(), (std::vector<int>{1, 0}));
  EXPECT_EQ(jnp::argmin(y, 1).to_vector<int>(), (std::vector<int>{3, 2}));
  EXPECT_EQ(jnp::argmax(y, 0).to_vector<int>(), (std::vector<int>{1, 1, 0, 1}));
  EXPECT_EQ(jnp::argmax(y, -2).to_vector<int>(), (std::vector<int>{1, 1, 0, 1}));
  EXPECT_EQ(jnp::argmax(y).item<int>(), 4);
  EXPECT_EQ(jnp::argmin(y).item<int>(), 3);
  EXPECT_EQ(jnp::argmax(y, 1, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(jnp::argmax(y, std::nullopt, true).shape(), (Shape{1, 1}));
  // The first NaN wins, as NumPy.
  EXPECT_EQ(jnp::argmax(f64({1, kNaN, 5, kNaN}, {4})).item<int>(), 1);
  EXPECT_EQ(jnp::argmin(f64({1, kNaN, -5, kNaN}, {4})).item<int>(), 1);
  EXPECT_EQ(jnp::argmax(f64({1, 9, kNaN, 5, 2, kNaN}, {3, 2}), 0).to_vector<int>(),
            (std::vector<int>{1, 2}));
  EXPECT_EQ(jnp::argmin(Array({4, -2, 7, -2})).item<int>(), 1);
  EXPECT_EQ(jnp::argmax(Array({false, true, true})).item<int>(), 1);
}

TEST(Argmax, Errors) {
  EXPECT_TRUE(throws_error([] { jnp::argmax(jnp::zeros({0})); }, {"argmax", "empty", "(0,)"}));
  EXPECT_TRUE(throws_error([] { jnp::argmin(jnp::zeros({2, 0}), 1); }, {"argmin", "(2, 0)"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::argmax(jnp::zeros({2, 3}), 2);
      },
      {"argmax", "axis 2", "(2, 3)"}));
}

TEST(AnyAll, Values) {
  Array b = {{true, false, false}, {true, true, true}};
  EXPECT_EQ(jnp::any(b, 1).to_vector<bool>(), (std::vector<bool>{true, true}));
  EXPECT_EQ(jnp::all(b, 1).to_vector<bool>(), (std::vector<bool>{false, true}));
  EXPECT_EQ(jnp::all(b, 0).to_vector<bool>(), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(jnp::all(b).dtype(), DType::bool_);
  EXPECT_FALSE(jnp::all(b).item<bool>());
  EXPECT_TRUE(jnp::any(b).item<bool>());
  // Non-bool inputs test against zero; NaN counts as true (NumPy).
  EXPECT_TRUE(jnp::all(f64({1, kNaN, -2}, {3})).item<bool>());
  EXPECT_FALSE(jnp::any(Array({0, 0})).item<bool>());
  // Empty: any = False, all = True.
  EXPECT_FALSE(jnp::any(jnp::zeros({0})).item<bool>());
  EXPECT_TRUE(jnp::all(jnp::zeros({0})).item<bool>());
  EXPECT_EQ(jnp::any(b, 0, true).shape(), (Shape{1, 3}));
}

TEST(Reductions, AxisErrors) {
  Array x = jnp::zeros({2, 3});
  EXPECT_TRUE(throws_error([&] { jnp::sum(x, {0, 0}); }, {"sum", "repeated axis", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { jnp::mean(x, {1, -1}); }, {"mean", "repeated axis -1"}));
  EXPECT_TRUE(throws_error([&] { jnp::var(x, 2); }, {"var", "axis 2", "rank 2", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { jnp::std(x, -3); }, {"std", "axis -3"}));
  EXPECT_TRUE(throws_error([&] { jnp::max(x, 5); }, {"max", "axis 5"}));
  EXPECT_TRUE(throws_error([&] { jnp::min(x, {0, 7}); }, {"min", "axis 7"}));
  EXPECT_TRUE(throws_error([&] { jnp::prod(x, 9); }, {"prod", "axis 9"}));
  EXPECT_TRUE(throws_error([&] { jnp::logsumexp(x, {1, 1}); }, {"logsumexp", "repeated"}));
  EXPECT_TRUE(throws_error([&] { jnp::any(x, 3); }, {"any", "axis 3"}));
  EXPECT_TRUE(throws_error([&] { jnp::all(x, -4); }, {"all", "axis -4"}));
  EXPECT_TRUE(throws_error([&] { jnp::sum(Array::scalar(1.f), 0); }, {"sum", "rank 0"}));
  EXPECT_TRUE(throws_error([] { jnp::sum(Array()); }, {"sum", "empty"}));
  EXPECT_TRUE(throws_error([] { jnp::argmax(Array()); }, {"argmax", "empty"}));
}

// ---- gradients ------------------------------------------------------------------------------

TEST(ReductionGrads, SumMeanMatchFiniteDifferences) {
  Array x = jnp::reshape(jnp::cos(jnp::arange(0, 24, 1, DType::float64)), {2, 3, 4});
  for (Axes axes : {Axes(), Axes(0), Axes(-1), Axes{0, 2}, Axes{1, 2}, Axes{0, 1, 2}}) {
    for (bool keep : {false, true}) {
      EXPECT_TRUE(
          grad_matches_fd([&](const Array& a) { return weighted(jnp::sum(a, axes, keep)); }, x));
      EXPECT_TRUE(
          grad_matches_fd([&](const Array& a) { return weighted(jnp::mean(a, axes, keep)); }, x));
    }
  }
  // Analytic: d mean / dx = 1 / n.
  Array g = loom::grad([](const Array& a) { return jnp::mean(a); })(x);
  EXPECT_TRUE(allclose(g, jnp::full({2, 3, 4}, 1.0 / 24, DType::float64), 0, 1e-15));
}

TEST(ReductionGrads, VarStdMatchFiniteDifferences) {
  Array x = jnp::reshape(jnp::cos(jnp::arange(0, 24, 1, DType::float64) * 1.3), {2, 3, 4});
  for (Axes axes : {Axes(), Axes(1), Axes{0, 2}}) {
    for (int ddof : {0, 1}) {
      EXPECT_TRUE(grad_matches_fd(
          [&](const Array& a) { return weighted(jnp::var(a, axes, false, ddof)); }, x));
      EXPECT_TRUE(grad_matches_fd(
          [&](const Array& a) { return weighted(jnp::std(a, axes, true, ddof)); }, x));
    }
  }
}

TEST(ReductionGrads, MaxMinMatchFiniteDifferencesAndSplitTies) {
  Array x = jnp::reshape(jnp::cos(jnp::arange(0, 24, 1, DType::float64) * 0.7), {2, 3, 4});
  for (Axes axes : {Axes(), Axes(0), Axes(-1), Axes{0, 2}}) {
    EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted(jnp::max(a, axes)); }, x));
    EXPECT_TRUE(
        grad_matches_fd([&](const Array& a) { return weighted(jnp::min(a, axes, true)); }, x));
  }
  // Ties: JAX splits the cotangent equally among the maxima (_reduce_chooser_jvp_rule).
  Array tied = f64({1, 3, 3, 2, 5, 5, 5, 0}, {2, 4});
  Array g = loom::grad([](const Array& a) { return jnp::sum(jnp::max(a, 1)); })(tied);
  EXPECT_TRUE(allclose(g, f64({0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0}, {2, 4}), 0, 1e-15));
  Array gmin = loom::grad([](const Array& a) { return jnp::min(a); })(f64({2, 1, 1, 4}, {4}));
  EXPECT_TRUE(allclose(gmin, f64({0, 0.5, 0.5, 0}, {4}), 0, 1e-15));
}

TEST(ReductionGrads, ProdHandlesZerosExactly) {
  Array x = jnp::reshape(jnp::cos(jnp::arange(0, 12, 1, DType::float64)) + 0.2, {3, 4});
  for (Axes axes : {Axes(), Axes(0), Axes(1)}) {
    EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted(jnp::prod(a, axes)); }, x));
  }
  // d prod / dx_i = product of the others: with one zero only that position is non-zero, with
  // two zeros everything is zero (division by x would give nan).
  Array one_zero = f64({2, 0, 3, 4}, {4});
  EXPECT_TRUE(allclose(loom::grad([](const Array& a) { return jnp::prod(a); })(one_zero),
                       f64({0, 24, 0, 0}, {4}), 0, 0));
  Array two_zeros = f64({2, 0, 3, 0}, {4});
  EXPECT_TRUE(allclose(loom::grad([](const Array& a) { return jnp::prod(a); })(two_zeros),
                       f64({0, 0, 0, 0}, {4}), 0, 0));
  EXPECT_TRUE(allclose(loom::grad([](const Array& a) { return jnp::prod(a); })(f64({2, 3, 5}, {3})),
                       f64({15, 10, 6}, {3}), 0, 0));
}

TEST(ReductionGrads, LogsumexpIsSoftmax) {
  Array x = x34();
  for (Axes axes : {Axes(), Axes(0), Axes(1)}) {
    EXPECT_TRUE(
        grad_matches_fd([&](const Array& a) { return weighted(jnp::logsumexp(a, axes)); }, x));
  }
  // Analytic: softmax. exp(x - lse) for x = (0, log 3): (1/4, 3/4).
  Array g =
      loom::grad([](const Array& a) { return jnp::logsumexp(a); })(f64({0, std::log(3.0)}, {2}));
  EXPECT_TRUE(allclose(g, f64({0.25, 0.75}, {2}), 0, 1e-15));
}

TEST(ReductionGrads, Float32GradientsKeepDtype) {
  Array x = {{1.f, 2.f}, {3.f, 4.f}};
  Array g = loom::grad([](const Array& a) { return jnp::sum(jnp::max(a, 0)); })(x);
  EXPECT_EQ(g.dtype(), DType::float32);
  EXPECT_TRUE(allclose(g, Array({{0.f, 0.f}, {1.f, 1.f}})));
}
