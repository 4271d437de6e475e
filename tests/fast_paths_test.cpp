// The fast paths of issue 10 against what they replace: the allocator's per-thread cache (blocks
// reused without the global pool, correct across threads and thread exit), BlasSingleThread's
// shared count (concurrent scopes restore OpenBLAS's thread count exactly), and Dropout's
// scalar-zero select (the same values as the full-size where it replaced, by the formula).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "detail/allocator.hpp"
#include "lax/blas_threads.hpp"
#include "loom/loom.hpp"
#include "test_util.hpp"

namespace {

using loom::Array;
using loom::detail::Buffer;

TEST(FastPaths, ThreadCacheReusesTheBlockJustFreed) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the pool is off under AddressSanitizer";
#else
  void* first = nullptr;
  {
    auto b = Buffer::allocate(12345);
    first = b->data;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % 64, 0u);
    EXPECT_GE(b->bytes, 12345u);
  }
  const auto before = loom::detail::pool_stats();
  auto again = Buffer::allocate(12345);
  EXPECT_EQ(again->data, first);  // same size, same thread: the cached block
  EXPECT_EQ(loom::detail::pool_stats().hits, before.hits + 1);
#endif
}

TEST(FastPaths, BuffersMoveAcrossThreadsAndSurviveThreadExit) {
  // Allocated on one thread, written, freed on another; caches of exited threads go to the pool.
  std::vector<std::shared_ptr<Buffer>> made(64);
  std::thread producer([&] {
    for (std::size_t i = 0; i < made.size(); ++i) {
      made[i] = Buffer::allocate(256 * (i % 4 + 1));
      std::memset(made[i]->data, int(i), made[i]->bytes);
    }
  });
  producer.join();
  std::thread consumer([&] {
    for (std::size_t i = 0; i < made.size(); ++i) {
      const auto* p = static_cast<const unsigned char*>(made[i]->data);
      EXPECT_EQ(p[0], static_cast<unsigned char>(i));
      EXPECT_EQ(p[made[i]->bytes - 1], static_cast<unsigned char>(i));
      made[i].reset();
    }
  });
  consumer.join();
  // Many threads allocating and freeing at once: every buffer is private to its owner.
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([t, &bad] {
      for (int i = 0; i < 2000; ++i) {
        Array a = loom::numpy::full({int64_t(16 + i % 7)}, double(t));
        Array b = a + 1.0;
        for (float v : b.to_vector<float>()) bad += v != float(t + 1);
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(bad.load(), 0);
  loom::detail::pool_release();
  EXPECT_EQ(loom::detail::pool_stats().cached_bytes, 0u);
}

TEST(FastPaths, ConcurrentBlasSingleThreadScopesRestoreTheThreadCount) {
  const int original = loom::detail::blas_num_threads();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([] {
      for (int i = 0; i < 500; ++i) {
        loom::detail::BlasSingleThread outer;
        if (!loom::detail::blas_uses_openmp()) EXPECT_EQ(loom::detail::blas_num_threads(), 1);
        loom::detail::BlasSingleThread nested;
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(loom::detail::blas_num_threads(), original);
}

TEST(FastPaths, DropoutKeepsScaledInputsAndZerosTheRest) {
  // Flax's Dropout: where(keep, x / keep_prob, 0) with keep ~ bernoulli(key, keep_prob).
  namespace nn = loom::nn;
  Array x = loom::random::normal(loom::random::key(3), {64, 33});
  const double rate = 0.25;
  const loom::random::Key key = loom::random::key(7);
  Array y = nn::Dropout{.rate = rate}.apply(loom::Tree{}, x, false, key);
  Array keep = loom::random::bernoulli(key, 1.0 - rate, x.shape());
  ASSERT_EQ(y.dtype(), x.dtype());
  ASSERT_EQ(y.shape(), x.shape());
  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  const auto kv = keep.astype(loom::DType::float32).to_vector<float>();
  for (std::size_t i = 0; i < xv.size(); ++i) {
    EXPECT_FLOAT_EQ(yv[i], kv[i] != 0 ? xv[i] / float(1.0 - rate) : 0.0f) << i;
  }
}

}  // namespace
