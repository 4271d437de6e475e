// The OpenMP paths of the GEMM-based ops called from inside a user's `#pragma omp parallel`
// region and with omp_set_dynamic(1): every output block must be written (the work is split by
// the team obtained, not the count requested) and equal the serial result. Also: exceptions
// thrown inside a region reach the caller, BLAS sizes beyond INT_MAX are a loom::Error, 1-row
// products (gemv) are right, and loom's pool keeps its promises (every index once, slots).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <climits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "detail/dispatch.hpp"
#include "lax/blas_threads.hpp"
#include "loom/loom.hpp"
#include "test_util.hpp"

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::throws_error;
using loom::testing::wave;
namespace jnp = loom::numpy;
namespace lax = loom::lax;

namespace {

// Restores OpenMP's settings after a test changes them.
struct OmpSettings {
  int threads = omp_get_max_threads();
  int dynamic = omp_get_dynamic();
  ~OmpSettings() {
    omp_set_num_threads(threads);
    omp_set_dynamic(dynamic);
  }
};

// Naive batched matmul (b, m, k) x (b, k, n) in double: the independent reference.
std::vector<double> naive_bmm(const Array& a, const Array& b) {
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  const std::int64_t B = a.shape()[0], M = a.shape()[1], K = a.shape()[2], N = b.shape()[2];
  std::vector<double> c(static_cast<std::size_t>(B * M * N), 0.0);
  for (std::int64_t q = 0; q < B; ++q)
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (std::int64_t p = 0; p < K; ++p)
          s += av[q * M * K + i * K + p] * bv[q * K * N + p * N + j];
        c[q * M * N + i * N + j] = s;
      }
  return c;
}

struct Results {
  Array mm, es, dg, conv;
  Tree conv_grad;
};

// Batched shapes chosen to take the OpenMP batched-GEMM path (many GEMMs below 2^18 flops each)
// and the multi-task conv path (several tasks of whole images).
Results run_all(DType dt) {
  Array a = wave({64, 24, 20}, 0.1, dt), b = wave({64, 20, 28}, 0.7, dt);
  Array x = wave({16, 32, 32, 16}, 0.3, dt), w = wave({3, 3, 16, 8}, 1.1, dt);
  Results r;
  r.mm = jnp::matmul(a, b);
  r.es = jnp::einsum("bmk,bkn->bmn", {a, b});
  r.dg = lax::dot_general(
      a, b, {.lhs_contracting = {2}, .rhs_contracting = {1}, .lhs_batch = {0}, .rhs_batch = {0}});
  r.conv = lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::same());
  Tree xw = {{"x", x}, {"w", w}};
  r.conv_grad = loom::grad([](const Tree& t) {
    Array y =
        lax::conv_general_dilated(t.at("x").leaf(), t.at("w").leaf(), {1, 1}, lax::Padding::same());
    return jnp::sum(y * y);
  })(xw);
  return r;
}

void expect_same(const Results& got, const Results& want, double tol) {
  auto close = [tol](const Array& g, const Array& e, const char* what) {
    ASSERT_EQ(g.shape(), e.shape()) << what;
    const auto gv = g.to_vector<double>(), ev = e.to_vector<double>();
    for (std::size_t i = 0; i < gv.size(); ++i) {
      ASSERT_NEAR(gv[i], ev[i], tol * (1 + std::abs(ev[i]))) << what << " element " << i;
    }
  };
  close(got.mm, want.mm, "matmul");
  close(got.es, want.es, "einsum");
  close(got.dg, want.dg, "dot_general");
  close(got.conv, want.conv, "conv");
  close(got.conv_grad.at("x").leaf(), want.conv_grad.at("x").leaf(), "conv dx");
  close(got.conv_grad.at("w").leaf(), want.conv_grad.at("w").leaf(), "conv dw");
}

void check_in_user_region(DType dt, double tol) {
  OmpSettings restore;
  omp_set_num_threads(1);
  const Results serial = run_all(dt);
  // The serial batched matmul itself against the naive reference.
  {
    Array a = wave({64, 24, 20}, 0.1, dt), b = wave({64, 20, 28}, 0.7, dt);
    const auto ref = naive_bmm(a, b);
    const auto got = serial.mm.to_vector<double>();
    ASSERT_EQ(got.size(), ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i)
      ASSERT_NEAR(got[i], ref[i], tol * (1 + std::abs(ref[i])));
  }
  omp_set_num_threads(4);  // loom asks for 4 threads; inside the region below it gets a team of 1
  const Results threaded = run_all(dt);
  expect_same(threaded, serial, tol);
  std::vector<Results> per_thread(3);
#pragma omp parallel for num_threads(3) schedule(static, 1)
  for (int i = 0; i < 3; ++i) per_thread[static_cast<std::size_t>(i)] = run_all(dt);
  for (const Results& r : per_thread) expect_same(r, serial, tol);
  // OMP_DYNAMIC: the runtime may hand out fewer threads than requested.
  omp_set_dynamic(1);
  expect_same(run_all(dt), serial, tol);
  std::vector<Results> dyn(2);
#pragma omp parallel for num_threads(2) schedule(static, 1)
  for (int i = 0; i < 2; ++i) dyn[static_cast<std::size_t>(i)] = run_all(dt);
  for (const Results& r : dyn) expect_same(r, serial, tol);
}

}  // namespace

TEST(Parallel, GemmOpsInsideUserParallelRegionFloat32) {
  check_in_user_region(DType::float32, 1e-4);
}

TEST(Parallel, GemmOpsInsideUserParallelRegionFloat64) {
  check_in_user_region(DType::float64, 1e-10);
}

TEST(Parallel, ReductionsInsideUserParallelRegion) {
  OmpSettings restore;
  omp_set_num_threads(4);
  Array x = wave({1 << 17}, 0.2);  // above parallel_for's grain
  const double serial = jnp::sum(x).item<double>();
  std::vector<double> got(3, 0.0);
#pragma omp parallel for num_threads(3) schedule(static, 1)
  for (int i = 0; i < 3; ++i) got[static_cast<std::size_t>(i)] = jnp::sum(x).item<double>();
  for (double g : got) EXPECT_NEAR(g, serial, 1e-9);
}

TEST(Parallel, ExceptionInsideRegionReachesTheCaller) {
  OmpSettings restore;
  omp_set_num_threads(4);
  std::vector<int> touched(1000, 0);
  EXPECT_TRUE(throws_error(
      [&] {
        loom::detail::parallel_chunks(1000, 4, [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t i = b; i < e; ++i) touched[static_cast<std::size_t>(i)] = 1;
          if (b <= 500 && 500 < e) throw loom::Error("chunk holding 500 failed");
        });
      },
      {"chunk holding 500 failed"}));
  // Non-loom exceptions keep their type.
  EXPECT_THROW(loom::detail::parallel_chunks(
                   10, 2, [](std::int64_t, std::int64_t) { throw std::runtime_error("x"); }),
               std::runtime_error);
  // Every index is covered exactly once whatever the team size.
  for (int dyn : {0, 1}) {
    omp_set_dynamic(dyn);
    std::vector<int> count(1001, 0);
    loom::detail::parallel_chunks(1001, 7, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) ++count[static_cast<std::size_t>(i)];
    });
    EXPECT_EQ(count, std::vector<int>(1001, 1));
  }
}

TEST(Parallel, BlasSizeBeyondIntMaxIsAnError) {
  // Every CBLAS size in contract.cpp and conv.cpp goes through blas_int (an operand with a
  // dimension over INT_MAX needs > 8 GiB, too much to build in a test).
  EXPECT_EQ(loom::detail::blas_int(INT_MAX, "dot_general", "k"), INT_MAX);
  EXPECT_EQ(loom::detail::blas_int(0, "dot_general", "k"), 0);
  EXPECT_TRUE(
      throws_error([] { loom::detail::blas_int(std::int64_t{INT_MAX} + 1, "dot_general", "k"); },
                   {"dot_general", "k = 2147483648", "exceeds INT_MAX (2147483647)", "cblas"}));
  EXPECT_TRUE(throws_error([] { loom::detail::blas_int(-1, "conv_general_dilated", "lda"); },
                           {"conv_general_dilated", "lda = -1"}));
}

// A product with one row or one column goes to cblas_?gemv (blas_gemm): every layout dot_general
// can hand it (each operand as stored or transposed, m = 1, n = 1, both) against a naive double
// product, with the output written over uninitialized memory.
TEST(Parallel, VectorProductsThroughGemvMatchTheNaiveProduct) {
  for (DType dt : {DType::float32, DType::float64}) {
    const double tol = dt == DType::float32 ? 1e-5 : 1e-12;
    for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{1, 37}, {29, 1}, {1, 1}}) {
      const std::int64_t k = 53;
      for (bool lhs_t : {false, true}) {
        for (bool rhs_t : {false, true}) {
          // lhs stored (m, k) or (k, m); rhs stored (k, n) or (n, k).
          Array a = wave(lhs_t ? loom::Shape{k, m} : loom::Shape{m, k}, 0.3, dt);
          Array b = wave(rhs_t ? loom::Shape{n, k} : loom::Shape{k, n}, 0.9, dt);
          Array c = lax::dot_general(
              a, b, {.lhs_contracting = {lhs_t ? 0 : 1}, .rhs_contracting = {rhs_t ? 1 : 0}});
          ASSERT_EQ(c.shape(), (loom::Shape{m, n}));
          const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
          const auto got = c.to_vector<double>();
          for (std::int64_t i = 0; i < m; ++i) {
            for (std::int64_t j = 0; j < n; ++j) {
              double s = 0;
              for (std::int64_t p = 0; p < k; ++p) {
                s += av[static_cast<std::size_t>(lhs_t ? p * m + i : i * k + p)] *
                     bv[static_cast<std::size_t>(rhs_t ? j * k + p : p * n + j)];
              }
              EXPECT_NEAR(got[static_cast<std::size_t>(i * n + j)], s, tol * (1 + std::abs(s)))
                  << "m=" << m << " n=" << n << " lhs_t=" << lhs_t << " rhs_t=" << rhs_t;
            }
          }
        }
      }
    }
  }
  // Batched (the many-small-GEMMs path on threads) with one row per GEMM.
  Array a = wave({64, 1, 20}, 0.1), b = wave({64, 20, 28}, 0.7);
  const auto ref = naive_bmm(a, b);
  const auto got = jnp::matmul(a, b).to_vector<double>();
  ASSERT_EQ(got.size(), ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-12);
  // k = 0: the product is all zeros (gemv would return early without writing).
  Array z = jnp::matmul(jnp::ones({1, 0}), jnp::ones({0, 5}));
  EXPECT_EQ(z.to_vector<double>(), std::vector<double>(5, 0.0));
}

// loom's pool (detail/thread_pool.hpp) under the uses the library promises: many back-to-back
// jobs (the claim/epoch protocol), nesting, several user threads at once, and slots that are
// distinct among the chunks running at the same time (conv indexes its scratch by them).
TEST(Parallel, PoolRunsEveryIndexOnceAcrossManyJobs) {
  OmpSettings restore;
  omp_set_num_threads(4);
  std::vector<int> count(257, 0);
  for (int job = 0; job < 5000; ++job) {
    const std::int64_t n = 1 + job % 257;
    loom::detail::parallel_chunks(n, 1 + job % 5, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) ++count[static_cast<std::size_t>(i)];
    });
  }
  // Index i is in every job with n > i.
  for (std::size_t i = 0; i < count.size(); ++i) {
    int want = 0;
    for (int job = 0; job < 5000; ++job) want += (1 + job % 257) > static_cast<int>(i);
    ASSERT_EQ(count[i], want) << "index " << i;
  }
}

TEST(Parallel, PoolSlotsAreDistinctAmongRunningChunks) {
  OmpSettings restore;
  omp_set_num_threads(3);
  for (int threads : {2, 3, 7}) {
    std::vector<std::atomic<int>> busy(static_cast<std::size_t>(threads));
    std::atomic<int> clashes{0}, out_of_range{0};
    loom::detail::parallel_chunks(64, threads, [&](std::int64_t, std::int64_t) {
      const int slot = loom::detail::thread_id();
      if (slot < 0 || slot >= threads) {
        ++out_of_range;
        return;
      }
      if (busy[static_cast<std::size_t>(slot)].fetch_add(1) != 0) ++clashes;
      volatile double x = 0;
      for (int i = 0; i < 20000; ++i) x = x + 1e-3;  // long enough to overlap other chunks
      busy[static_cast<std::size_t>(slot)].fetch_sub(1);
    });
    EXPECT_EQ(out_of_range.load(), 0) << threads;
    // The slot is the chunk's index: chunk i of parallel_chunks(n, t) is [n*i/t, n*(i+1)/t).
    std::vector<int> slot_of(64, -1);
    loom::detail::parallel_chunks(64, threads, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) slot_of[std::size_t(i)] = loom::detail::thread_id();
    });
    for (int c = 0; c < threads; ++c) {
      for (int i = 64 * c / threads; i < 64 * (c + 1) / threads; ++i) {
        EXPECT_EQ(slot_of[std::size_t(i)], c) << i;
      }
    }
    EXPECT_EQ(clashes.load(), 0) << threads;
  }
  EXPECT_EQ(loom::detail::thread_id(), 0);  // outside a job
}

TEST(Parallel, PoolNestedAndConcurrentUserThreads) {
  OmpSettings restore;
  omp_set_num_threads(4);
  // Nested: the inner loop runs inline on whichever thread runs the outer chunk.
  std::vector<int> grid(40 * 50, 0);
  loom::detail::parallel_chunks(40, 4, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      loom::detail::parallel_chunks(50, 4, [&](std::int64_t cb, std::int64_t ce) {
        for (std::int64_t c = cb; c < ce; ++c) ++grid[static_cast<std::size_t>(r * 50 + c)];
      });
    }
  });
  EXPECT_EQ(grid, std::vector<int>(grid.size(), 1));
  // Four user threads running big reductions and elementwise ops at once (one gets the pool,
  // the others run inline), each against the serial value.
  Array x = wave({1 << 17}, 0.4);
  const double want = jnp::sum(jnp::tanh(x)).item<double>();
  std::vector<double> got(4, 0.0);
  std::vector<std::thread> users;
  for (std::size_t t = 0; t < got.size(); ++t) {
    users.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) got[t] = jnp::sum(jnp::tanh(x)).item<double>();
    });
  }
  for (auto& u : users) u.join();
  for (double g : got) EXPECT_NEAR(g, want, 1e-9);
  // An exception from one of many chunks, with other chunks still running on workers.
  std::atomic<int> ran{0};
  EXPECT_THROW(loom::detail::parallel_chunks(100, 4,
                                             [&](std::int64_t b, std::int64_t) {
                                               ++ran;
                                               if (b == 0) throw std::runtime_error("first");
                                             }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 4);  // every chunk ran (one per thread)
}
