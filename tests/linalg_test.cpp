// jnp.matmul / jnp.dot / jnp.einsum: values against NumPy 1.24 (the constants below were printed
// by /usr/bin/python3 with numpy; each test names the expression), a brute-force loop reference
// over many memory layouts, finite-difference gradients (float64) and error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

// numpy: (np.arange(n) * step + start).reshape(shape)
Array lin(Shape shape, double step, double start, DType dtype = DType::float64) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = double(i) * step + start;
  return Array(v, shape, dtype);
}

Array vec(std::vector<double> v, Shape shape) {
  return Array(v, shape);
}

}  // namespace

// ---- matmul -------------------------------------------------------------------------------

TEST(Matmul, TwoByThreeTimesThreeByTwo) {
  // numpy: [[1,2,3],[4,5,6]] @ [[7,8],[9,10],[11,12]] = [[58, 64], [139, 154]]
  Array a = {{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}};
  Array b = {{7.f, 8.f}, {9.f, 10.f}, {11.f, 12.f}};
  for (DType dt : {DType::float32, DType::float64}) {
    Array c = jnp::matmul(a.astype(dt), b.astype(dt));
    EXPECT_EQ(c.dtype(), dt);
    EXPECT_EQ(c.shape(), (Shape{2, 2}));
    EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{58, 64, 139, 154}));
  }
  EXPECT_EQ(jnp::matmul(a, b.astype(DType::float64)).dtype(), DType::float64);
}

TEST(Matmul, OneDimensionalOperandsArePromotedAndSqueezed) {
  // numpy: v = [1,-2,3]; v @ B = [22, 24]; A @ v = [6, 12]; v @ v = 14
  Array v = vec({1, -2, 3}, Shape{3});
  Array a = vec({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  Array b = vec({7, 8, 9, 10, 11, 12}, Shape{3, 2});
  Array vb = jnp::matmul(v, b);
  EXPECT_EQ(vb.shape(), (Shape{2}));
  EXPECT_EQ(vb.to_vector<double>(), (std::vector<double>{22, 24}));
  Array av = jnp::matmul(a, v);
  EXPECT_EQ(av.shape(), (Shape{2}));
  EXPECT_EQ(av.to_vector<double>(), (std::vector<double>{6, 12}));
  Array vv = jnp::matmul(v, v);
  EXPECT_EQ(vv.shape(), Shape{});
  EXPECT_EQ(vv.item<double>(), 14);
  // 1-D against a batched matrix: (3,) @ (4, 3, 2) -> (4, 2)
  EXPECT_EQ(jnp::matmul(v, jnp::ones({4, 3, 2})).shape(), (Shape{4, 2}));
}

TEST(Matmul, BatchBroadcasting) {
  // numpy: x = (arange(12)*0.25 - 1).reshape(2,1,2,3); y = (arange(18)*0.5 - 2).reshape(3,3,2)
  // np.matmul(x, y).shape == (2, 3, 2, 2)
  Array x = lin({2, 1, 2, 3}, 0.25, -1), y = lin({3, 3, 2}, 0.5, -2);
  const std::vector<double> expected = {2.75,   1.625,   0.5, 0.5,   -4.0,  -5.125, 0.5,  0.5,
                                        -10.75, -11.875, 0.5, 0.5,   -1.75, -0.625, -4.0, -1.75,
                                        5.0,    6.125,   9.5, 11.75, 11.75, 12.875, 23.0, 25.25};
  for (DType dt : {DType::float32, DType::float64}) {
    Array z = jnp::matmul(x.astype(dt), y.astype(dt));
    EXPECT_EQ(z.shape(), (Shape{2, 3, 2, 2}));
    EXPECT_TRUE(allclose(z, Array(expected, Shape{2, 3, 2, 2}), 1e-6, 1e-6));
  }
}

TEST(Matmul, IntegerAndBool) {
  // numpy int32: [[1,2],[3,4]] @ [[5,-6],[7,8]] = [[19, 10], [43, 14]]
  Array a(std::vector<int>{1, 2, 3, 4}, Shape{2, 2}), b(std::vector<int>{5, -6, 7, 8}, Shape{2, 2});
  Array c = jnp::matmul(a, b);
  EXPECT_EQ(c.dtype(), DType::int32);
  EXPECT_EQ(c.to_vector<int>(), (std::vector<int>{19, 10, 43, 14}));
  // int32 wraps as numpy/XLA do: [[2**30]] @ [[4]] == [[0]]
  Array big(std::vector<int>{1 << 30}, Shape{1, 1}), four(std::vector<int>{4}, Shape{1, 1});
  EXPECT_EQ(jnp::matmul(big, four).item<int>(), 0);
  Array u(std::vector<std::uint32_t>{3, 4}, Shape{2});
  EXPECT_EQ(jnp::matmul(u, u).dtype(), DType::uint32);
  EXPECT_EQ(jnp::matmul(u, u).item<std::uint32_t>(), 25u);
  // numpy bool: [[T,F],[F,F]] @ [[F,T],[T,F]] = [[F, T], [F, F]]
  Array ba = {{true, false}, {false, false}}, bb = {{false, true}, {true, false}};
  Array bc = jnp::matmul(ba, bb);
  EXPECT_EQ(bc.dtype(), DType::bool_);
  EXPECT_EQ(bc.to_vector<bool>(), (std::vector<bool>{false, true, false, false}));
}

TEST(Matmul, EmptyDimensions) {
  Array z = jnp::matmul(jnp::ones({2, 0}), jnp::ones({0, 3}));
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.f));
  EXPECT_EQ(jnp::matmul(jnp::ones({0, 4}), jnp::ones({4, 3})).shape(), (Shape{0, 3}));
}

TEST(Matmul, LargeMatchesLoopReference) {
  // Large enough for threaded BLAS; checked against a plain triple loop in double.
  Array a = wave(Shape{67, 129}, 0.3, DType::float32),
        b = wave(Shape{129, 45}, 1.1, DType::float32);
  Array c = jnp::matmul(a, b);
  auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for (int i = 0; i < 67; ++i)
    for (int j = 0; j < 45; ++j) {
      double acc = 0;
      for (int k = 0; k < 129; ++k)
        acc += av[std::size_t(i * 129 + k)] * bv[std::size_t(k * 45 + j)];
      ASSERT_NEAR(cv[std::size_t(i * 45 + j)], acc, 1e-4);
    }
}

TEST(Matmul, ManySmallBatchedProductsMatchLoopReference) {
  // 64 products of 16x16 matrices: run on several threads (each GEMM is small).
  Array a = wave(Shape{64, 16, 16}, 0.3), b = wave(Shape{64, 16, 16}, 0.6);
  Array c = jnp::matmul(a, b);
  auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for (int t = 0; t < 64; ++t)
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) {
        double acc = 0;
        for (int k = 0; k < 16; ++k)
          acc += av[std::size_t((t * 16 + i) * 16 + k)] * bv[std::size_t((t * 16 + k) * 16 + j)];
        ASSERT_NEAR(cv[std::size_t((t * 16 + i) * 16 + j)], acc, 1e-12);
      }
}

TEST(MatmulGrad, FiniteDifferences) {
  struct Cfg {
    Shape a, b;
  };
  const std::vector<Cfg> cfgs = {{{3, 4}, {4, 2}},
                                 {{4}, {4, 3}},
                                 {{3, 4}, {4}},
                                 {{4}, {4}},
                                 {{2, 3, 4}, {4, 5}},
                                 {{3, 4}, {2, 4, 2}},
                                 {{2, 1, 3, 4}, {3, 4, 2}},
                                 {{1, 2, 3}, {2, 3, 2}}};
  for (const Cfg& c : cfgs) {
    SCOPED_TRACE(c.a.str() + " @ " + c.b.str());
    Array a = wave(c.a, 0.2), b = wave(c.b, 0.9);
    Array w = wave(jnp::matmul(a, b).shape(), 1.6);
    EXPECT_TRUE(
        grad_matches_fd([&](const Array& v) { return jnp::sum(jnp::matmul(v, b) * w); }, a));
    EXPECT_TRUE(
        grad_matches_fd([&](const Array& v) { return jnp::sum(jnp::matmul(a, v) * w); }, b));
  }
}

TEST(MatmulGrad, MixedDtypeGradientKeepsArgumentDtype) {
  Array a = wave(Shape{2, 3}, 0.1, DType::float32), b = wave(Shape{3, 2}, 0.5);
  Array g = loom::grad([&](const Array& v) { return jnp::sum(jnp::matmul(v, b)); })(a);
  EXPECT_EQ(g.dtype(), DType::float32);
  // d/da sum(a @ b) = row sums of b broadcast over a's rows.
  auto bv = b.to_vector<double>();
  auto gv = g.to_vector<double>();
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(gv[std::size_t(i * 3 + k)], bv[std::size_t(k * 2)] + bv[std::size_t(k * 2 + 1)],
                  1e-6);
}

TEST(MatmulErrors, Messages) {
  EXPECT_TRUE(throws_error(
      [] {
        jnp::matmul(jnp::ones({2, 3}), jnp::ones({4, 5}));
      },
      {"matmul", "(2, 3)", "(4, 5)", "inner dimensions differ", "3 columns", "4 rows"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::matmul(jnp::ones({2, 2, 3}), jnp::ones({3, 3, 4}));
      },
      {"matmul", "(2, 2, 3)", "(3, 3, 4)", "cannot be broadcast"}));
  EXPECT_TRUE(throws_error([] { jnp::matmul(Array::scalar(2.f), jnp::ones({3})); },
                           {"matmul", "at least one dimension", "()"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::matmul(jnp::ones({2, 2}, DType::int32), jnp::ones({2, 2}, DType::uint32));
      },
      {"matmul", "int32", "uint32"}));
  EXPECT_TRUE(throws_error([] { jnp::matmul(Array(), jnp::ones({3})); }, {"matmul"}));
}

// ---- dot ----------------------------------------------------------------------------------

TEST(Dot, NumpySemantics) {
  // numpy: a = arange(6).reshape(2,3); b = (arange(24) - 5).reshape(4,3,2); np.dot(a, b)
  Array a = lin({2, 3}, 1, 0), b = lin({4, 3, 2}, 1, -5);
  Array c = jnp::dot(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 4, 2}));
  EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{-5, -2, 13, 16, 31, 34, 49, 52, -32, -20,
                                                        40, 52, 112, 124, 184, 196}));
  EXPECT_EQ(jnp::dot(vec({1, 2}, {2}), vec({3, 4}, {2})).item<double>(), 11);
  Array s = jnp::dot(Array::scalar(2.0), vec({1, 2, 3}, {3}));
  EXPECT_EQ(s.to_vector<double>(), (std::vector<double>{2, 4, 6}));
  // N-D . 1-D sums over the last axis: [[1,2],[3,4]] . [1, 10] = [21, 43]
  EXPECT_EQ(jnp::dot(vec({1, 2, 3, 4}, {2, 2}), vec({1, 10}, {2})).to_vector<double>(),
            (std::vector<double>{21, 43}));
}

TEST(DotGrad, FiniteDifferences) {
  Array a = wave(Shape{2, 3}, 0.3), b = wave(Shape{4, 3, 2}, 0.8), w = wave(Shape{2, 4, 2}, 1.4);
  EXPECT_TRUE(grad_matches_fd([&](const Array& v) { return jnp::sum(jnp::dot(v, b) * w); }, a));
  EXPECT_TRUE(grad_matches_fd([&](const Array& v) { return jnp::sum(jnp::dot(a, v) * w); }, b));
  Array s = Array::scalar(0.7), x = wave(Shape{3}, 0.1);
  EXPECT_TRUE(grad_matches_fd([&](const Array& v) { return jnp::sum(jnp::dot(v, x) * x); }, s));
}

TEST(DotErrors, NotAligned) {
  EXPECT_TRUE(throws_error(
      [] {
        jnp::dot(jnp::ones({2, 3}), jnp::ones({2, 3}));
      },
      {"dot", "(2, 3)", "not aligned", "3 (dim 1) != 2 (dim 0)"}));
}

// ---- einsum -------------------------------------------------------------------------------

TEST(Einsum, AttentionContractions) {
  // numpy: q = (arange(48)*0.1 - 1).reshape(2,3,2,4); k = (arange(80)*0.07 + 0.3).reshape(2,5,2,4)
  // np.einsum("bqhd,bkhd->bhqk", q, k)
  Array q = lin({2, 3, 2, 4}, 0.1, -1), k = lin({2, 5, 2, 4}, 0.07, 0.3);
  const std::vector<double> scores = {
      -1.342, -3.246, -5.15, -7.054, -8.958, -0.046, -0.158, -0.27,  -0.382, -0.494,
      1.25,   2.93,   4.61,  6.29,   7.97,   -1.198, -2.206, -3.214, -4.222, -5.23,
      0.994,  1.778,  2.562, 3.346,  4.13,   3.186,  5.762,  8.338,  10.914, 13.49,
      19.906, 23.378, 26.85, 30.322, 33.794, 30.162, 35.426, 40.69,  45.954, 51.218,
      40.418, 47.474, 54.53, 61.586, 68.642, 27.218, 31.586, 35.954, 40.322, 44.69,
      38.37,  44.53,  50.69, 56.85,  63.01,  49.522, 57.474, 65.426, 73.378, 81.33};
  for (DType dt : {DType::float32, DType::float64}) {
    Array s = jnp::einsum("bqhd,bkhd->bhqk", {q.astype(dt), k.astype(dt)});
    EXPECT_EQ(s.dtype(), dt);
    EXPECT_TRUE(allclose(s, Array(scores, Shape{2, 2, 3, 5}), 1e-5, 1e-5));
  }
  // numpy: p = (arange(60)*0.03 - 0.5).reshape(2,2,3,5); v = (arange(80)*-0.05 +
  // 1).reshape(2,5,2,4) np.einsum("bhqk,bkhd->bqhd", p, v)
  Array p = lin({2, 2, 3, 5}, 0.03, -0.5), v = lin({2, 5, 2, 4}, -0.05, 1);
  const std::vector<double> out = {
      -0.56,  -0.45,   -0.34,  -0.23,   -0.12,  -0.1225,  -0.125,  -0.1275, -0.41,  -0.3375,
      -0.265, -0.1925, -0.12,  -0.16,   -0.2,   -0.24,    -0.26,   -0.225,  -0.19,  -0.155,
      -0.12,  -0.1975, -0.275, -0.3525, -4.26,  -4.375,   -4.49,   -4.605,  -9.22,  -9.4475,
      -9.675, -9.9025, -5.61,  -5.7625, -5.915, -6.0675,  -10.72,  -10.985, -11.25, -11.515,
      -6.96,  -7.15,   -7.34,  -7.53,   -12.22, -12.5225, -12.825, -13.1275};
  Array o = jnp::einsum("bhqk,bkhd->bqhd", {p, v});
  EXPECT_EQ(o.shape(), (Shape{2, 3, 2, 4}));
  EXPECT_TRUE(allclose(o, Array(out, Shape{2, 3, 2, 4}), 1e-12, 1e-12));
}

TEST(Einsum, MatrixFormsImplicitEllipsisAndReductions) {
  // numpy: m = (arange(6) + 1).reshape(2,3); n = (arange(12) - 3).reshape(3,4)
  Array m = lin({2, 3}, 1, 1), n = lin({3, 4}, 1, -3);
  const std::vector<double> mn = {14, 20, 26, 32, 23, 38, 53, 68};  // np.einsum("ij,jk", m, n)
  EXPECT_EQ(jnp::einsum("ij,jk->ik", {m, n}).to_vector<double>(), mn);
  EXPECT_EQ(jnp::einsum("ij,jk", {m, n}).to_vector<double>(), mn);
  EXPECT_EQ(jnp::einsum(" ij , jk -> ik ", {m, n}).to_vector<double>(), mn);
  EXPECT_EQ(jnp::einsum("ba", {m}).shape(), (Shape{3, 2}));  // implicit: output "ab"
  EXPECT_EQ(jnp::einsum("ij->ji", {m}).to_vector<double>(),
            (std::vector<double>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(jnp::einsum("ij->", {m}).item<double>(), 21);
  EXPECT_EQ(jnp::einsum("ij->j", {m}).to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(jnp::einsum("ij,ij->i", {m, m}).to_vector<double>(), (std::vector<double>{14, 77}));
  // np.einsum("ij,k->", m, arange(3) + 1) == 126 (labels private to one operand are summed)
  EXPECT_EQ(jnp::einsum("ij,k->", {m, lin({3}, 1, 1)}).item<double>(), 126);
  // np.einsum("ij,jk,kl->il", m, n, arange(8).reshape(4,2)) = [[336, 428], [696, 878]]
  EXPECT_EQ(jnp::einsum("ij,jk,kl->il", {m, n, lin({4, 2}, 1, 0)}).to_vector<double>(),
            (std::vector<double>{336, 428, 696, 878}));
  // Upper-case letters: np.einsum("iB,jB->ij", m, arange(12).reshape(4,3))
  EXPECT_EQ(jnp::einsum("iB,jB->ij", {m, lin({4, 3}, 1, 0)}).to_vector<double>(),
            (std::vector<double>{8, 26, 44, 62, 17, 62, 107, 152}));
  // Ellipsis with broadcasting: e (1,2,3), f (4,3,2): np.einsum("...ij,...jk->...ik", e, f)
  Array e = lin({1, 2, 3}, 1, 0), f = lin({4, 3, 2}, 1, 1);
  Array ef = jnp::einsum("...ij,...jk->...ik", {e, f});
  EXPECT_EQ(ef.shape(), (Shape{4, 2, 2}));
  EXPECT_EQ(ef.to_vector<double>(), (std::vector<double>{13, 16, 40, 52, 31, 34, 112, 124, 49, 52,
                                                         184, 196, 67, 70, 256, 268}));
  EXPECT_EQ(jnp::einsum("...ij,...jk", {e, f}).shape(), (Shape{4, 2, 2}));
}

TEST(Einsum, EveryLayoutMatchesLoopReference) {
  // All 2-operand contractions of labels {b, i, j, k} with every axis order of both operands and
  // the output: exercises the no-copy strided GEMM paths, the transposed-C path and the copy
  // fallbacks. The reference is a plain loop over (b, i, j, k).
  const int B = 3, I = 4, J = 5, K = 2;
  Array A = wave(Shape{B, I, K}, 0.2), Bm = wave(Shape{B, K, J}, 0.7);
  auto av = A.to_vector<double>(), bv = Bm.to_vector<double>();
  std::vector<double> ref(static_cast<std::size_t>(B * I * J), 0);
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < I; ++i)
      for (int j = 0; j < J; ++j)
        for (int k = 0; k < K; ++k)
          ref[std::size_t((b * I + i) * J + j)] +=
              av[std::size_t((b * I + i) * K + k)] * bv[std::size_t((b * K + k) * J + j)];
  const std::vector<std::string> perms3 = {"bik", "bki", "ibk", "ikb", "kbi", "kib"};
  const std::vector<std::string> permsb = {"bkj", "bjk", "kbj", "kjb", "jbk", "jkb"};
  const std::vector<std::string> permsc = {"bij", "bji", "ibj", "ijb", "jbi", "jib"};
  for (const auto& sa : perms3) {
    Array a = jnp::einsum("bik->" + sa, {A});
    for (const auto& sb : permsb) {
      Array b = jnp::einsum("bkj->" + sb, {Bm});
      for (const auto& sc : permsc) {
        {
          Array c = jnp::einsum(sa + "," + sb + "->" + sc, {a, b});
          auto cv = c.to_vector<double>();
          const int dims[3] = {sc[0] == 'b'   ? B
                               : sc[0] == 'i' ? I
                                              : J,
                               sc[1] == 'b'   ? B
                               : sc[1] == 'i' ? I
                                              : J,
                               sc[2] == 'b'   ? B
                               : sc[2] == 'i' ? I
                                              : J};
          for (int b = 0; b < B; ++b)
            for (int i = 0; i < I; ++i)
              for (int j = 0; j < J; ++j) {
                auto coord = [&](char ch) { return ch == 'b' ? b : ch == 'i' ? i : j; };
                const int off = (coord(sc[0]) * dims[1] + coord(sc[1])) * dims[2] + coord(sc[2]);
                const double got = cv[std::size_t(off)];
                ASSERT_NEAR(got, ref[std::size_t((b * I + i) * J + j)], 1e-12)
                    << sa << "," << sb << "->" << sc;
              }
        }
      }
    }
  }
  // Integer path with the same layouts: small integers, exact.
  Array ai = lin({B, I, K}, 1, -7, DType::int32), bi = lin({B, K, J}, 1, -4, DType::int32);
  Array ref_i = jnp::einsum("bik,bkj->bij", {ai.astype(DType::float64), bi.astype(DType::float64)});
  for (const auto& sa : perms3) {
    for (const auto& sc : permsc) {
      Array c = jnp::einsum(sa + ",bkj->" + sc, {jnp::einsum("bik->" + sa, {ai}), bi});
      EXPECT_EQ(c.dtype(), DType::int32);
      EXPECT_TRUE(allclose(jnp::einsum(sc + "->bij", {c}).astype(DType::float64), ref_i, 0, 0));
    }
  }
}

TEST(EinsumGrad, FiniteDifferences) {
  struct Cfg {
    std::string spec;
    Shape a, b;
  };
  const std::vector<Cfg> cfgs = {
      {"bqhd,bkhd->bhqk", {2, 3, 2, 4}, {2, 5, 2, 4}},
      {"bhqk,bkhd->bqhd", {2, 2, 3, 5}, {2, 5, 2, 4}},
      {"ij,jk->ik", {3, 4}, {4, 2}},
      {"bij,bjk->bik", {2, 3, 4}, {2, 4, 3}},
      {"ij,k->jk", {2, 3}, {4}},
      {"...ij,...jk", {1, 2, 3}, {4, 3, 2}},
  };
  for (const Cfg& c : cfgs) {
    SCOPED_TRACE(c.spec);
    Array a = wave(c.a, 0.4), b = wave(c.b, 1.2);
    Array w = wave(jnp::einsum(c.spec, {a, b}).shape(), 2.3);
    EXPECT_TRUE(grad_matches_fd(
        [&](const Array& v) {
          return jnp::sum(jnp::einsum(c.spec, {v, b}) * w);
        },
        a));
    EXPECT_TRUE(grad_matches_fd(
        [&](const Array& v) {
          return jnp::sum(jnp::einsum(c.spec, {a, v}) * w);
        },
        b));
  }
  Array x = wave(Shape{3, 4}, 0.1), w1 = wave(Shape{4, 3}, 0.5), w2 = wave(Shape{4}, 0.9);
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& v) { return jnp::sum(jnp::einsum("ij->ji", {v}) * w1); }, x));
  EXPECT_TRUE(
      grad_matches_fd([&](const Array& v) { return jnp::sum(jnp::einsum("ij->j", {v}) * w2); }, x));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& v) {
        return jnp::einsum("ij,jk,kl->", {v, w1, v});
      },
      x));
}

TEST(EinsumErrors, Messages) {
  Array m = jnp::ones({2, 3}), n = jnp::ones({3, 4});
  EXPECT_TRUE(throws_error([&] { jnp::einsum("ij,jk->ik", {m}); },
                           {"einsum", "\"ij,jk->ik\"", "2 operands but 1 were given"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::einsum("ij,j%->ik", {m, n});
      },
      {"einsum", "invalid subscript character '%'"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::einsum("ijk,jk->ik", {m, n});
      },
      {"einsum", "operand 0", "(2, 3)", "2 dimensions", "name 3"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::einsum("ij,ik->jk", {m, n});
      },
      {"einsum", "size of 'i' differs", "2 vs 3", "operand 1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::einsum("ii->i", {jnp::ones({3, 3})});
      },
      {"einsum", "'i' repeats within operand 0", "diagonals"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::einsum("ij,jk->iz", {m, n});
      },
      {"einsum", "output subscript 'z'", "does not appear"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::einsum("ij,jk->ii", {m, n});
      },
      {"einsum", "output subscript 'i' repeats"}));
  EXPECT_TRUE(throws_error([&] { jnp::einsum("i..j", {m}); }, {"einsum", "invalid ellipsis"}));
  EXPECT_TRUE(throws_error([&] { jnp::einsum("ij", {}); }, {"einsum", "at least one operand"}));
}
