// loom::random against JAX's own published values. Sources:
//   [JT]  jax-ml/jax tests/random_test.py (PrngTest), made in the original threefry layout.
//   [JI]  jax-ml/jax jax/_src/nn/initializers.py docstrings (key(42)), original layout.
//   [FK]  google/flax docs_nnx/key_concepts.ipynb (Aug 2025, current JAX: partitionable layout),
//         cell "class Foo(nnx.Module)": jax.random.normal(fold_in(key(0), 0), (4, 4)).
//   [FR]  google/flax docs/guides/flax_fundamentals/rng_guide.ipynb (Sep 2025), RNGModule cells:
//         make_rng = fold_in(key, first 4 bytes of SHA-1(count)); the SHA-1 words were computed
//         with Python's hashlib.
// Float32 values printed by JAX/NumPy in shortest round-trip form name one float32 exactly, so a
// C++ float literal of the printed text is the same float and we compare bit patterns.
#include "loom/random.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <set>
#include <vector>

#include "random/kernels.hpp"
#include "test_util.hpp"

namespace loom {
namespace {

namespace rnd = loom::random;
using loom::testing::throws_error;
using rnd::ThreefryMode;

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

::testing::AssertionResult same_f32_bits(const Array& a, const std::vector<float>& expected) {
  if (a.dtype() != DType::float32) return ::testing::AssertionFailure() << "not float32";
  const auto v = a.to_vector<float>();
  if (v.size() != expected.size()) return ::testing::AssertionFailure() << "size " << v.size();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (bits_of(v[i]) != bits_of(expected[i])) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << v[i] << " (0x" << std::hex << bits_of(v[i])
             << "), expected " << expected[i] << " (0x" << bits_of(expected[i]) << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::uint32_t> u32(const Array& a) {
  return a.to_vector<std::uint32_t>();
}

class OriginalMode : public ::testing::Test {
 protected:
  rnd::ModeGuard guard_{ThreefryMode::original};
};

// ---- the hash
// ------------------------------------------------------------------------------------

// [JT] testThreefry2x32 (Random123 known answers).
TEST(Threefry, KnownAnswers) {
  EXPECT_EQ(rnd::threefry2x32(0, 0, 0, 0), std::make_pair(0x6b200159u, 0x99ba4efeu));
  EXPECT_EQ(rnd::threefry2x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu),
            std::make_pair(0x1cb996fcu, 0xbb002be7u));
  EXPECT_EQ(rnd::threefry2x32(0x13198a2eu, 0x03707344u, 0x243f6a88u, 0x85a308d3u),
            std::make_pair(0xc4923a9cu, 0x483df7a0u));
}

// [JT] testThreefry2x32Large (smaller n): the first half pairs with the second half.
TEST(Threefry, LargeCountArray) {
  const std::int64_t n = 100001;
  std::vector<std::uint32_t> c(2 * n);
  std::fill(c.begin(), c.begin() + n, 0x243f6a88u);
  std::fill(c.begin() + n, c.end(), 0x85a308d3u);
  const Array out = rnd::threefry_2x32(rnd::Key(Array({0x13198a2eu, 0x03707344u}, DType::uint32)),
                                       Array(c, Shape{2 * n}));
  const auto v = u32(out);
  for (std::int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(v[i], 0xc4923a9cu) << i;
    ASSERT_EQ(v[n + i], 0x483df7a0u) << i;
  }
}

// [JT] testThreefry2x32Empty
TEST(Threefry, EmptyCount) {
  const Array out = rnd::threefry_2x32(rnd::key(0), Array::empty(Shape{10, 0}, DType::uint32));
  EXPECT_EQ(out.shape(), (Shape{10, 0}));
}

// The AVX2+FMA and baseline builds of the kernels give identical bits.
TEST(Threefry, KernelBuildsAgree) {
  const auto& fast = rnd::detail::kernels();
  const auto& base = rnd::detail::baseline_kernels();
  const std::int64_t n = 20000;
  std::vector<std::uint32_t> a(n), b(n);
  fast.bits32_partitionable(1, 2, (std::uint64_t{1} << 32) - 7000, n, a.data());
  base.bits32_partitionable(1, 2, (std::uint64_t{1} << 32) - 7000, n, b.data());
  ASSERT_EQ(a, b);
  std::vector<float> fa(n), fb(n);
  const float inf = std::numeric_limits<float>::infinity();
  fast.erfinv_f32(a.data(), fa.data(), n, -0.99999994f, 2.0f, -inf, inf, 1.0f);
  base.erfinv_f32(a.data(), fb.data(), n, -0.99999994f, 2.0f, -inf, inf, 1.0f);
  for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(bits_of(fa[i]), bits_of(fb[i])) << i;
  fast.gumbel_f32(a.data(), fa.data(), n);
  base.gumbel_f32(a.data(), fb.data(), n);
  for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(bits_of(fa[i]), bits_of(fb[i])) << i;
}

// The parity note's check value: XLA's float32 erf(sqrt(2)) = 0.9544997f (0x3F745A18).
TEST(Threefry, XlaErfCheckValue) {
  EXPECT_EQ(bits_of(rnd::detail::xla_erf_f32(1.4142135f)), 0x3F745A18u);
  EXPECT_EQ(bits_of(rnd::detail::xla_erf_f32(-1.4142135f)), 0xBF745A18u);
  EXPECT_EQ(rnd::detail::xla_erf_f32(5.0f), 1.0f);
  EXPECT_EQ(rnd::detail::xla_erf_f32(0.0f), 0.0f);
}

// ---- keys
// ----------------------------------------------------------------------------------------

// [JT] test_prng_seeds_and_keys (x64 off, and the x64 rows).
TEST(Keys, SeedsMapToWords) {
  auto words = [](std::int64_t s, rnd::SeedMode m = rnd::SeedMode::x32) {
    return u32(rnd::PRNGKey(s, m));
  };
  EXPECT_EQ(words(1), (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(words(-1), (std::vector<std::uint32_t>{0, 4294967295u}));
  EXPECT_EQ(words(-2), (std::vector<std::uint32_t>{0, 4294967294u}));
  EXPECT_EQ(words(2147483647LL + 100), (std::vector<std::uint32_t>{0, 2147483747u}));
  EXPECT_EQ(words(-2147483648LL - 100), (std::vector<std::uint32_t>{0, 2147483548u}));
  EXPECT_EQ(words(-1, rnd::SeedMode::x64), (std::vector<std::uint32_t>{4294967295u, 4294967295u}));
  EXPECT_EQ(words(-3, rnd::SeedMode::x64), (std::vector<std::uint32_t>{4294967295u, 4294967293u}));
  EXPECT_EQ(rnd::key(-1).words(), std::make_pair(0u, 4294967295u));
  EXPECT_EQ(rnd::key(7), rnd::wrap_key_data(rnd::PRNGKey(7)));
  EXPECT_EQ(rnd::key_data(rnd::key(7)).shape(), Shape{2});
}

TEST(Keys, BatchIndexing) {
  const rnd::Key ks = rnd::split(rnd::key(3), Shape{2, 3});
  EXPECT_EQ(ks.shape(), (Shape{2, 3}));
  EXPECT_EQ(ks[1].shape(), Shape{3});
  EXPECT_EQ(ks[1][2], ks[-1][-1]);
  const auto flat = u32(ks.data());
  EXPECT_EQ(ks[1][2].words(), std::make_pair(flat[10], flat[11]));
  EXPECT_TRUE(throws_error([&] { ks[2]; }, {"Key[]", "out of range", "(2, 3)"}));
  EXPECT_TRUE(throws_error([] { rnd::key(0)[0]; }, {"single key"}));
}

// [JT] testPRNGValues (original layout): split, fold_in and randint of key(0).
TEST_F(OriginalMode, PrngValues) {
  for (const rnd::Key& k : {rnd::key(0), rnd::Key(rnd::PRNGKey(0))}) {
    EXPECT_EQ(u32(rnd::key_data(rnd::split(k, 4))),
              (std::vector<std::uint32_t>{2285895361u, 1501764800u, 1518642379u, 4090693311u,
                                          433833334u, 4221794875u, 839183663u, 3740430601u}));
    EXPECT_EQ(u32(rnd::key_data(rnd::fold_in(k, 4))),
              (std::vector<std::uint32_t>{2285895361u, 433833334u}));
    const Array r = rnd::randint(k, {3, 3}, 0, 8);
    EXPECT_EQ(r.dtype(), DType::int32);
    EXPECT_EQ(r.to_vector<std::int32_t>(), (std::vector<std::int32_t>{2, 1, 3, 6, 1, 5, 6, 3, 4}));
  }
}

// [JT] testRngRandomBits (seed 1701; the uint64 row is the x64 one).
TEST_F(OriginalMode, RandomBits) {
  const rnd::Key k = rnd::key(1701);
  EXPECT_EQ(u32(rnd::bits(k, {3}, 8)), (std::vector<std::uint32_t>{216, 115, 43}));
  EXPECT_EQ(u32(rnd::bits(k, {3}, 16)), (std::vector<std::uint32_t>{41682, 1300, 55017}));
  EXPECT_EQ(u32(rnd::bits(k, {3}, 32)),
            (std::vector<std::uint32_t>{56197195u, 4200222568u, 961309823u}));
  EXPECT_EQ(rnd::bits64(k, {3}),
            (std::vector<std::uint64_t>{3982329540505020460ull, 16822122385914693683ull,
                                        7882654074788531506ull}));
  // bits(k, shape, 64) holds the same values as (high, low) words.
  const auto w = u32(rnd::bits(k, {3}, 64));
  EXPECT_EQ((std::uint64_t{w[0]} << 32) | w[1], 3982329540505020460ull);
}

// [JT] testRngRandomBitsViewProperty: 8/16-bit draws are views of the 32-bit words.
TEST_F(OriginalMode, RandomBitsViewProperty) {
  const int n = 10;
  const auto b8 = u32(rnd::bits(rnd::key(1701), {n * 64 / 8}, 8));
  const auto b16 = u32(rnd::bits(rnd::key(1701), {n * 64 / 16}, 16));
  const auto b32 = u32(rnd::bits(rnd::key(1701), {n * 64 / 32}, 32));
  for (int i = 0; i < n * 2; ++i) {
    EXPECT_EQ(b8[4 * i] | (b8[4 * i + 1] << 8) | (b8[4 * i + 2] << 16) | (b8[4 * i + 3] << 24),
              b32[i]);
    EXPECT_EQ(b16[2 * i] | (b16[2 * i + 1] << 16), b32[i]);
  }
}

// [JT] _RANDOM_VALUES_CASES, the threefry2x32 rows; seed = adler32(name + "threefry2x32").
// JAX compares with assertAllClose (float32: atol = rtol = 1e-6) against 6-digit values.
TEST_F(OriginalMode, DistributionValues) {
  const rnd::Key bits_key = rnd::key(942802475);
  EXPECT_EQ(u32(rnd::bits(bits_key, {5}, 8)), (std::vector<std::uint32_t>{10, 158, 82, 54, 158}));
  EXPECT_EQ(u32(rnd::bits(bits_key, {5}, 16)),
            (std::vector<std::uint32_t>{6738, 38161, 50695, 57337, 61600}));
  EXPECT_EQ(
      u32(rnd::bits(bits_key, {5}, 32)),
      (std::vector<std::uint32_t>{1978747883u, 4134381225u, 3628107870u, 689687174u, 2788938207u}));
  EXPECT_EQ(rnd::bits64(bits_key, {5}),
            (std::vector<std::uint64_t>{17649965731882839947ull, 1415307058040849897ull,
                                        8282622628079774249ull, 14024425113645909402ull,
                                        2012979996110532418ull}));
  auto close = [](const Array& a, std::vector<float> e) {
    return loom::testing::allclose(a, Array(e, Shape{std::int64_t(e.size())}), 1e-6, 1e-6);
  };
  EXPECT_TRUE(close(rnd::uniform(rnd::key(1338574713), {5}),
                    {0.298671f, 0.073213f, 0.873356f, 0.260549f, 0.412797f}));
  EXPECT_TRUE(close(rnd::normal(rnd::key(1193674498), {5}),
                    {-1.173234f, -1.511662f, 0.070593f, -0.099764f, 1.052845f}));
  EXPECT_TRUE(close(rnd::truncated_normal(rnd::key(2846034731), 0, 2, {5}),
                    {0.582807f, 1.709771f, 0.159513f, 0.861376f, 0.36148f}));
  EXPECT_TRUE(close(rnd::gumbel(rnd::key(1179715317), {5}),
                    {2.06701f, 0.911726f, 0.145736f, 0.185427f, -0.00711f}));
  EXPECT_EQ(rnd::bernoulli(rnd::key(1612777541), 0.5, Shape{5}).to_vector<bool>(),
            (std::vector<bool>{false, true, true, true, false}));
  EXPECT_EQ(rnd::randint(rnd::key(1319372649), {5}, 0, 10).to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{0, 5, 7, 7, 5}));
}

// ---- partitionable layout
// ------------------------------------------------------------------------

TEST(Partitionable, IsTheDefault) {
  EXPECT_EQ(rnd::default_mode(), ThreefryMode::partitionable);
  EXPECT_EQ(rnd::current_mode(), ThreefryMode::partitionable);
  {
    rnd::ModeGuard outer(ThreefryMode::original);
    EXPECT_EQ(rnd::current_mode(), ThreefryMode::original);
    {
      rnd::ModeGuard inner(ThreefryMode::partitionable);
      EXPECT_EQ(rnd::current_mode(), ThreefryMode::partitionable);
    }
    EXPECT_EQ(rnd::current_mode(), ThreefryMode::original);
  }
  EXPECT_EQ(rnd::current_mode(), ThreefryMode::partitionable);
  // The modes really differ for split and bits, not for fold_in.
  const rnd::Key k = rnd::key(0);
  const rnd::Key s_part = rnd::split(k, 4);
  const Array b_part = rnd::bits(k, {7});
  rnd::ModeGuard g(ThreefryMode::original);
  EXPECT_NE(rnd::split(k, 4), s_part);
  EXPECT_NE(u32(rnd::bits(k, {7})), u32(b_part));
}

// [JT] test_threefry_split_fold_in_symmetry, for both key constructors.
TEST(Partitionable, SplitEqualsFoldIn) {
  for (const rnd::Key& k : {rnd::key(72), rnd::Key(rnd::PRNGKey(72))}) {
    const rnd::Key s = rnd::split(k, 3);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(s[i], rnd::fold_in(k, static_cast<std::uint32_t>(i)));
  }
  // fold_in does not depend on the layout.
  rnd::ModeGuard g(ThreefryMode::original);
  const auto orig = rnd::fold_in(rnd::key(72), 2).words();
  rnd::ModeGuard g2(ThreefryMode::partitionable);
  EXPECT_EQ(rnd::fold_in(rnd::key(72), 2).words(), orig);
}

// Element i of bits is y0 ^ y1 of hash(key, (i >> 32, i)): check one index past 2^32 - 1 by
// hashing directly, and that bits of a large shape is the prefix-consistent stream.
TEST(Partitionable, BitsAreCounterHashes) {
  const rnd::Key k = rnd::key(5);
  const auto [k0, k1] = k.words();
  const auto b = u32(rnd::bits(k, {2, 3}));
  for (std::uint32_t i = 0; i < 6; ++i) {
    const auto [y0, y1] = rnd::threefry2x32(k0, k1, 0, i);
    EXPECT_EQ(b[i], y0 ^ y1);
  }
  const auto big = u32(rnd::bits(k, {100000}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(big[i], b[i]);
  std::vector<std::uint32_t> wrap(3);
  rnd::detail::kernels().bits32_partitionable(k0, k1, (std::uint64_t{1} << 32) - 1, 3, wrap.data());
  const auto [a0, a1] = rnd::threefry2x32(k0, k1, 1, 1);
  EXPECT_EQ(wrap[2], a0 ^ a1);
  const auto b64 = rnd::bits64(k, {2});
  const auto [z0, z1] = rnd::threefry2x32(k0, k1, 0, 1);
  EXPECT_EQ(b64[1], (std::uint64_t{z0} << 32) | z1);
  EXPECT_EQ(u32(rnd::bits(k, {3}, 8))[1], b[1] & 0xffu);
}

// [FK] Flax's printed jax.random.normal(fold_in(key(0), 0), (4, 4)) under current JAX.
TEST(Partitionable, NormalMatchesFlaxDocs) {
  EXPECT_TRUE(
      same_f32_bits(rnd::normal(rnd::fold_in(rnd::key(0), 0), {4, 4}),
                    {1.0040143f, -0.9063372f, -0.7481722f, -1.1713669f, -0.8712328f, 0.5888381f,
                     0.72392994f, -1.0255982f, 1.661628f, -1.8910251f, -1.2889339f, 0.13360691f,
                     -1.1530392f, 0.23929629f, 1.7448074f, 0.5050189f}));
}

// [FR] make_rng('rng_stream') of a top-level module: fold_in(key, SHA-1(count)[:4]).
TEST(Partitionable, FoldInMatchesFlaxRngGuide) {
  const std::uint32_t sha1_of_1 = 3213575472u, sha1_of_2 = 3303678395u, sha1_of_3 = 2554499690u;
  EXPECT_EQ(rnd::fold_in(rnd::key(0), sha1_of_1).words(), std::make_pair(1428664606u, 3351135085u));
  EXPECT_EQ(rnd::fold_in(rnd::key(0), sha1_of_2).words(), std::make_pair(3456700291u, 3873160899u));
  EXPECT_EQ(rnd::fold_in(rnd::key(0), sha1_of_3).words(), std::make_pair(2411773124u, 4124888837u));
  EXPECT_EQ(rnd::fold_in(rnd::key(1), sha1_of_1).words(), std::make_pair(3077990774u, 2166202870u));
  EXPECT_EQ(rnd::fold_in(rnd::key(1), sha1_of_3).words(), std::make_pair(791337683u, 1373966058u));
}

// ---- sampler properties (both layouts)
// ------------------------------------------------------------

class BothModes : public ::testing::TestWithParam<ThreefryMode> {
 protected:
  rnd::ModeGuard guard_{GetParam()};
};
INSTANTIATE_TEST_SUITE_P(Random, BothModes,
                         ::testing::Values(ThreefryMode::partitionable, ThreefryMode::original));

TEST_P(BothModes, UniformRangeAndMoments) {
  for (DType dt : {DType::float32, DType::float64}) {
    const Array u = rnd::uniform(rnd::key(1), {200001}, dt, -2.0, 3.0);
    EXPECT_EQ(u.dtype(), dt);
    const auto v = u.to_vector<double>();
    double mean = 0;
    for (double x : v) {
      ASSERT_GE(x, -2.0);
      ASSERT_LT(x, 3.0);
      mean += x;
    }
    mean /= v.size();
    EXPECT_NEAR(mean, 0.5, 0.02);  // sd of the mean: 5 / sqrt(12 * 2e5) = 0.0032
  }
}

TEST_P(BothModes, NormalMoments) {
  for (DType dt : {DType::float32, DType::float64}) {
    const auto v = rnd::normal(rnd::key(2), {200001}, dt).to_vector<double>();
    double m = 0, m2 = 0;
    for (double x : v) m += x, m2 += x * x;
    m /= v.size();
    m2 /= v.size();
    EXPECT_NEAR(m, 0.0, 0.012);
    EXPECT_NEAR(m2 - m * m, 1.0, 0.02);
  }
}

TEST_P(BothModes, TruncatedNormalBoundsAndVariance) {
  // Variance of a standard normal truncated to (-1, 1): 1 - 2 phi(1) / (2 Phi(1) - 1).
  const double phi1 = std::exp(-0.5) / std::sqrt(2 * M_PI);
  const double target = 1 - 2 * phi1 / std::erf(1 / std::sqrt(2.0));
  for (DType dt : {DType::float32, DType::float64}) {
    const auto v = rnd::truncated_normal(rnd::key(3), -1, 1, {200000}, dt).to_vector<double>();
    double m2 = 0;
    for (double x : v) {
      ASSERT_GT(x, -1.0);
      ASSERT_LT(x, 1.0);
      m2 += x * x;
    }
    EXPECT_NEAR(m2 / v.size(), target, 0.01);
  }
}

TEST_P(BothModes, GumbelMean) {
  const auto v = rnd::gumbel(rnd::key(4), {200000}).to_vector<double>();
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  EXPECT_NEAR(mean, 0.5772156649, 0.015);  // Euler-Mascheroni; sd of the mean 0.0029
}

TEST_P(BothModes, BernoulliFrequencyAndArrayP) {
  const auto v = rnd::bernoulli(rnd::key(5), 0.3, Shape{100000}).to_vector<bool>();
  EXPECT_NEAR(std::count(v.begin(), v.end(), true) / 1e5, 0.3, 0.006);
  const Array p({0.0f, 1.0f}, DType::float32);
  const auto w = rnd::bernoulli(rnd::key(6), p, Shape{50, 2}).to_vector<bool>();
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(w[2 * i]);
    EXPECT_TRUE(w[2 * i + 1]);
  }
  EXPECT_EQ(rnd::bernoulli(rnd::key(6), p).shape(), Shape{2});
}

TEST_P(BothModes, RandintRangeAndDtypes) {
  const auto v = rnd::randint(rnd::key(7), {10000}, -3, 4).to_vector<std::int32_t>();
  std::set<std::int32_t> seen(v.begin(), v.end());
  EXPECT_EQ(seen, (std::set<std::int32_t>{-3, -2, -1, 0, 1, 2, 3}));
  const auto u =
      rnd::randint(rnd::key(7), {1000}, 0, 5000000000LL, DType::uint32).to_vector<std::uint32_t>();
  EXPECT_GT(*std::max_element(u.begin(), u.end()), 2147483648u);  // full uint32 range is used
  // Bounds are clipped to int32 as JAX does.
  const auto c = rnd::randint(rnd::key(8), {1000}, -10, 1LL << 40).to_vector<std::int32_t>();
  for (auto x : c) ASSERT_GE(x, -10);
}

TEST_P(BothModes, PermutationAndChoice) {
  const auto p = rnd::permutation(rnd::key(9), 50).to_vector<std::int32_t>();
  std::vector<std::int32_t> sorted = p, iota(50);
  std::sort(sorted.begin(), sorted.end());
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(p, iota);
  // Permuting an array along axis 1 moves whole columns; independent=true shuffles each row.
  const Array x({{0.f, 1.f, 2.f, 3.f}, {10.f, 11.f, 12.f, 13.f}});
  const auto y = rnd::permutation(rnd::key(10), x, 1).to_vector<float>();
  for (int j = 0; j < 4; ++j) EXPECT_EQ(y[4 + j], y[j] + 10.f);
  const auto z = rnd::permutation(rnd::key(10), x, 1, true).to_vector<float>();
  EXPECT_EQ(std::accumulate(z.begin(), z.begin() + 4, 0.f), 6.f);
  // Without replacement: distinct values.
  const auto c = rnd::choice(rnd::key(11), 20, {20}, false).to_vector<std::int32_t>();
  EXPECT_EQ(std::set<std::int32_t>(c.begin(), c.end()).size(), 20u);
  // With p: zero-probability entries never appear, in both replacement modes.
  const Array pr({0.f, 0.5f, 0.f, 0.5f}, DType::float32);
  for (bool replace : {true, false}) {
    const auto d =
        rnd::choice(rnd::key(12), 4, {replace ? 200 : 2}, replace, pr).to_vector<std::int32_t>();
    for (auto i : d) EXPECT_TRUE(i == 1 || i == 3) << i;
  }
  // choice of an array's rows.
  const Array rows = rnd::choice(rnd::key(13), x, {3}, true);
  EXPECT_EQ(rows.shape(), (Shape{3, 4}));
}

TEST_P(BothModes, CategoricalPicksDominantLogit) {
  const Array logits({{0.f, 50.f, 0.f}, {50.f, 0.f, -50.f}});
  const Array s = rnd::categorical(rnd::key(14), logits);
  EXPECT_EQ(s.to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 0}));
  EXPECT_EQ(rnd::categorical(rnd::key(14), logits, 0).to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{1, 0, 0}));
  const Array many = rnd::categorical(rnd::key(15), Array({0.f, std::log(3.f)}), -1, Shape{20000});
  const auto v = many.to_vector<std::int32_t>();
  EXPECT_NEAR(std::count(v.begin(), v.end(), 1) / 20000.0, 0.75, 0.015);
}

// ---- bad input
// -----------------------------------------------------------------------------------

TEST(RandomErrors, ClearMessages) {
  const rnd::Key k = rnd::key(0);
  EXPECT_TRUE(
      throws_error([&] { rnd::bits(k, {3}, 12); }, {"random.bits", "8, 16, 32 or 64", "12"}));
  EXPECT_TRUE(throws_error([&] { rnd::split(k, -1); }, {"random.split", "-1"}));
  EXPECT_TRUE(throws_error([&] { rnd::bernoulli(k, 1.5); }, {"random.bernoulli", "[0, 1]", "1.5"}));
  EXPECT_TRUE(throws_error([&] { rnd::bernoulli(k, Array({0.5f, -0.1f})); }, {"[0, 1]"}));
  EXPECT_TRUE(throws_error([&] { rnd::bernoulli(k, Array({1, 0})); }, {"floating", "int32"}));
  EXPECT_TRUE(throws_error(
      [&] {
        rnd::bernoulli(k, Array({0.5f, 0.5f}), Shape{3});
      },
      {"(2,)", "(3,)"}));
  EXPECT_TRUE(throws_error([&] { rnd::randint(k, {2}, 5, 5); },
                           {"random.randint", "minval=5", "maxval=5"}));
  EXPECT_TRUE(
      throws_error([&] { rnd::randint(k, {2}, 0, 5, DType::float32); }, {"int32", "float32"}));
  EXPECT_TRUE(throws_error([&] { rnd::choice(k, 3, {5}, false); },
                           {"random.choice", "size 5", "size 3", "replace=false"}));
  EXPECT_TRUE(throws_error([&] { rnd::choice(k, 0, {1}); }, {"random.choice", "greater than 0"}));
  EXPECT_TRUE(throws_error(
      [&] {
        rnd::choice(k, 3, {2}, true, Array({0.5f, 0.5f}));
      },
      {"p has shape (2,)", "3"}));
  EXPECT_TRUE(throws_error([&] { rnd::uniform(k, {2}, DType::int32); },
                           {"random.uniform", "float32 or float64", "int32"}));
  EXPECT_TRUE(throws_error([&] { rnd::normal(rnd::split(k, 2), {2}); },
                           {"random.normal", "single key", "(2,)"}));
  EXPECT_TRUE(throws_error([&] { rnd::permutation(k, -4); }, {"random.permutation", "-4"}));
  EXPECT_TRUE(throws_error([&] { rnd::categorical(k, Array({{1.f}}), 2); }, {"axis 2", "(1, 1)"}));
  EXPECT_TRUE(throws_error([] { rnd::Key(Array({1.f, 2.f})); }, {"uint32", "float32", "(2,)"}));
  EXPECT_TRUE(throws_error(
      [] {
        rnd::Key(Array({1u, 2u, 3u}, DType::uint32));
      },
      {"(..., 2)", "(3,)"}));
  EXPECT_TRUE(throws_error([] { rnd::fold_in(rnd::Key(), 1); }, {"random.fold_in", "empty"}));
}

// Inputs that would otherwise index past an array or return an invalid index.
TEST(RandomErrors, RejectedBeforeTheyCorruptMemory) {
  std::vector<float> p(16, 0.f);
  p[0] = -100.f;
  const Array weights(p, Shape{16});
  EXPECT_TRUE(throws_error([&] { rnd::choice(rnd::key(0), 16, Shape{4}, true, weights); },
                           {"choice", "non-negative"}));
  EXPECT_TRUE(throws_error(
      [&] {
        rnd::categorical(rnd::key(0), numpy::zeros({3, 0}));
      },
      {"categorical", "no categories"}));
  EXPECT_TRUE(throws_error([&] { rnd::bits(rnd::key(0), Shape{std::int64_t{1} << 61}, 64); },
                           {"bits", "too large"}));
  EXPECT_TRUE(throws_error([&] { rnd::split(rnd::key(0), std::int64_t{1} << 62); },
                           {"split", "too large"}));
}

}  // namespace
}  // namespace loom
