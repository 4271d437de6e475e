// loom::optim losses (optax.losses) and accuracy: values against optax's published doc values,
// NumPy and closed forms; gradients against finite differences in float64; error cases.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/loom.hpp"
#include "loom/optim.hpp"
#include "test_util.hpp"

namespace {

using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;
namespace jnp = loom::numpy;
namespace optim = loom::optim;

const Array kLogits = {{1.2f, -0.8f, -0.5f}, {0.9f, -1.2f, 1.1f}};
const Array kLabels = Array(std::vector<int>{0, 1}, Shape{2});

TEST(SoftmaxCrossEntropyWithIntegerLabels, OptaxDocstringValues) {
  // optax/losses/_classification.py, softmax_cross_entropy_with_integer_labels docstring:
  // print(...) -> [0.2761 2.9518].
  Array loss = optim::softmax_cross_entropy_with_integer_labels(kLogits, kLabels);
  EXPECT_EQ(loss.dtype(), DType::float32);
  EXPECT_EQ(loss.shape(), Shape{2});
  EXPECT_TRUE(allclose(loss, Array({0.2761f, 2.9518f}), 0, 5e-5));
}

TEST(SoftmaxCrossEntropyWithIntegerLabels, Float64MatchesNumPy) {
  // NumPy 1.24, float64: logsumexp(x) - x[label] = [0.2761297055455374, 2.951798795854425].
  Array loss =
      optim::softmax_cross_entropy_with_integer_labels(kLogits.astype(DType::float64), kLabels);
  EXPECT_TRUE(allclose(loss, f64({0.2761297055455374, 2.951798795854425}, {2}), 1e-7, 0));
}

TEST(SoftmaxCrossEntropyWithIntegerLabels, GradientIsSoftmaxMinusOneHot) {
  // NumPy 1.24, float64: softmax(x) - onehot(labels) for kLogits.
  Array x = kLogits.astype(DType::float64);
  Array g = loom::grad([](const Array& z) {
    return jnp::sum(optim::softmax_cross_entropy_with_integer_labels(z, kLabels));
  })(x);
  EXPECT_TRUE(allclose(g,
                       f64({-0.24128548510122438, 0.102680843769555, 0.1386046413316694,
                            0.4266467908126841, -0.9477543578714815, 0.5211075670587973},
                           {2, 3}),
                       1e-7, 1e-12));
}

TEST(SoftmaxCrossEntropyWithIntegerLabels, GradientMatchesFiniteDifferences) {
  Array labels(std::vector<int>{3, 0, 4, 1, 2, 2}, Shape{2, 3});
  Array weights = wave({2, 3}, 0.4);
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& z) {
        return jnp::sum(optim::softmax_cross_entropy_with_integer_labels(z, labels) * weights);
      },
      wave({2, 3, 5}, 0.1) * 3.0));
}

TEST(SoftmaxCrossEntropyWithIntegerLabels, StableForLargeLogits) {
  // exp(1000) overflows; the shifted kernel gives log(1 + e^-1000) + 1000 = 1000 exactly.
  Array loss = optim::softmax_cross_entropy_with_integer_labels(
      Array({{1000.f, 0.f}, {-1000.f, 0.f}}), Array(std::vector<int>{1, 0}, Shape{2}));
  EXPECT_TRUE(allclose(loss, Array({1000.f, 1000.f}), 1e-7, 0));
}

TEST(SoftmaxCrossEntropyWithIntegerLabels, ManyClassesFloat32MatchesFloat64) {
  Array x = wave({64, 37}, 0.3, DType::float32) * 5.0;
  std::vector<int> l(64);
  for (int i = 0; i < 64; ++i) l[static_cast<std::size_t>(i)] = (i * 7) % 37;
  Array labels(l, Shape{64});
  Array a = optim::softmax_cross_entropy_with_integer_labels(x, labels);
  Array b = optim::softmax_cross_entropy_with_integer_labels(x.astype(DType::float64), labels);
  EXPECT_TRUE(allclose(a, b, 1e-5, 1e-5));
}

TEST(SoftmaxCrossEntropyWithIntegerLabels, BadLabelsAreClearErrors) {
  EXPECT_TRUE(throws_error(
      [] {
        optim::softmax_cross_entropy_with_integer_labels(kLogits,
                                                         Array(std::vector<int>{0, 3}, Shape{2}));
      },
      {"softmax_cross_entropy_with_integer_labels", "label 3", "flat index 1", "[0, 3)",
       "(2, 3)"}));
  EXPECT_TRUE(throws_error(
      [] {
        optim::softmax_cross_entropy_with_integer_labels(kLogits,
                                                         Array(std::vector<int>{-1, 0}, Shape{2}));
      },
      {"label -1", "out of range"}));
  EXPECT_TRUE(throws_error(
      [] {
        optim::softmax_cross_entropy_with_integer_labels(kLogits, Array({0.f, 1.f}));
      },
      {"labels must be integers", "float32"}));
  EXPECT_TRUE(throws_error(
      [] {
        optim::softmax_cross_entropy_with_integer_labels(
            kLogits, Array(std::vector<int>{0, 1, 2}, Shape{3}));
      },
      {"labels of shape (3,)", "logits of shape (2, 3)", "expected labels (2,)"}));
}

TEST(SoftmaxCrossEntropy, MatchesIntegerLabelsOnOneHot) {
  Array onehot = jnp::one_hot(kLabels, 3);
  EXPECT_TRUE(
      allclose(optim::softmax_cross_entropy(kLogits, onehot), Array({0.2761f, 2.9518f}), 0, 5e-5));
  Array soft = wave({2, 3}, 0.2) * 0.0 + 1.0 / 3.0;
  // Uniform targets: logsumexp(x) - mean(x), NumPy float64.
  Array x = kLogits.astype(DType::float64);
  Array expected = jnp::logsumexp(x, {-1}) - jnp::mean(x, {-1});
  EXPECT_TRUE(allclose(optim::softmax_cross_entropy(x, soft), expected, 1e-12, 1e-12));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& z) { return jnp::sum(optim::softmax_cross_entropy(z, soft)); }, x));
  EXPECT_TRUE(throws_error(
      [] {
        optim::softmax_cross_entropy(kLogits, Array({1.f, 0.f}));
      },
      {"softmax_cross_entropy", "same shape"}));
}

TEST(SigmoidBinaryCrossEntropy, ClosedFormAndStable) {
  // -y log(s(x)) - (1 - y) log(1 - s(x)) with s the logistic function (closed form below).
  Array x = f64({-2.0, 0.0, 0.5, 3.0}, {4});
  Array y = f64({0.0, 1.0, 0.3, 1.0}, {4});
  std::vector<double> e;
  for (int i = 0; i < 4; ++i) {
    const double xi = x.to_vector<double>()[static_cast<std::size_t>(i)];
    const double yi = y.to_vector<double>()[static_cast<std::size_t>(i)];
    const double s = 1 / (1 + std::exp(-xi));
    e.push_back(-yi * std::log(s) - (1 - yi) * std::log(1 - s));
  }
  EXPECT_TRUE(allclose(optim::sigmoid_binary_cross_entropy(x, y), f64(e, {4}), 1e-12, 1e-12));
  // log(1 + e^-100) + 0 for x = 100, y = 1 is ~0; for y = 0 it is 100.
  EXPECT_TRUE(
      allclose(optim::sigmoid_binary_cross_entropy(Array({100.f, 100.f}), Array({1.f, 0.f})),
               Array({0.f, 100.f}), 1e-6, 1e-6));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& z) { return jnp::sum(optim::sigmoid_binary_cross_entropy(z, y)); }, x));
  // The labels are differentiated too (optax does not stop their gradient): d/dy = -x.
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& z) { return jnp::sum(optim::sigmoid_binary_cross_entropy(x, z) * x); }, y));
  EXPECT_TRUE(throws_error(
      [] {
        optim::sigmoid_binary_cross_entropy(Array({1.f}), Array({1.f, 0.f}));
      },
      {"sigmoid_binary_cross_entropy", "same shape"}));
}

TEST(RegressionLosses, SquaredL2Huber) {
  Array p = f64({1.0, -2.0, 0.5, 3.0}, {2, 2});
  Array t = f64({0.0, 0.0, 1.0, 0.0}, {2, 2});
  EXPECT_TRUE(allclose(optim::squared_error(p, t), f64({1.0, 4.0, 0.25, 9.0}, {2, 2})));
  EXPECT_TRUE(allclose(optim::squared_error(p), f64({1.0, 4.0, 0.25, 9.0}, {2, 2})));
  EXPECT_TRUE(allclose(optim::l2_loss(p, t), f64({0.5, 2.0, 0.125, 4.5}, {2, 2})));
  // delta 1: |e| <= 1 -> 0.5 e^2; else |e| - 0.5. e = 1, -2, -0.5, 3.
  EXPECT_TRUE(allclose(optim::huber_loss(p, t), f64({0.5, 1.5, 0.125, 2.5}, {2, 2})));
  // delta 2: 0.5, 2 (= 0.5 * 4), 0.125, 2 * (3 - 1) = 4.
  EXPECT_TRUE(allclose(optim::huber_loss(p, t, 2.0), f64({0.5, 2.0, 0.125, 4.0}, {2, 2})));
  Array x = f64({0.3, -2.0, 0.7, 3.0}, {2, 2});
  EXPECT_TRUE(
      grad_matches_fd([&](const Array& z) { return jnp::sum(optim::huber_loss(z, t)); }, x));
  EXPECT_TRUE(grad_matches_fd([&](const Array& z) { return jnp::sum(optim::l2_loss(z, t)); }, x));
  EXPECT_TRUE(throws_error([&] { optim::squared_error(p, f64({1.0}, {1})); },
                           {"squared_error", "(2, 2)", "(1,)"}));
}

TEST(CosineDistance, ClosedForm) {
  // Rows: parallel (0), orthogonal (1), opposite (2), and 1 - 11 / (sqrt(5) sqrt(25)).
  Array p = f64({1, 0, 1, 0, 1, 1, 1, 2}, {4, 2});
  Array t = f64({2, 0, 0, 3, -1, -1, 3, 4}, {4, 2});
  EXPECT_TRUE(allclose(optim::cosine_distance(p, t),
                       f64({0.0, 1.0, 2.0, 1.0 - 11.0 / (std::sqrt(5.0) * 5.0)}, {4}), 1e-12,
                       1e-12));
  // epsilon clips the squared norm: a zero vector gives similarity 0, distance 1.
  EXPECT_TRUE(allclose(optim::cosine_distance(f64({0, 0}, {1, 2}), f64({1, 0}, {1, 2}), 1e-12),
                       f64({1.0}, {1})));
  EXPECT_TRUE(
      grad_matches_fd([&](const Array& z) { return jnp::sum(optim::cosine_distance(z, t)); },
                      f64({1, 0.5, 1, 0.2, 1, 1.5, 1, 2}, {4, 2})));
}

TEST(Accuracy, FractionOfArgmaxHits) {
  Array logits = {{0.1f, 0.9f}, {0.8f, 0.2f}, {0.3f, 0.7f}, {0.6f, 0.4f}};
  Array acc = optim::accuracy(logits, Array(std::vector<int>{1, 0, 0, 1}, Shape{4}));
  EXPECT_EQ(acc.dtype(), DType::float32);
  EXPECT_EQ(acc.item<float>(), 0.5f);
  EXPECT_TRUE(throws_error(
      [&] {
        optim::accuracy(logits, Array(std::vector<int>{1, 0, 2, 1}, Shape{4}));
      },
      {"accuracy", "label 2", "out of range"}));
}

}  // namespace
