// loom's worker pool (see thread_pool.hpp for why it exists and how chunks are claimed).
#include "detail/thread_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace loom::detail {
namespace {

// How long an idle worker polls for the next job before it sleeps, and how long the caller polls
// for the chunks still running before it sleeps. Short: on a busy machine a spinning thread takes
// a time slice from someone who has work; long enough to bridge the serial gap between two
// parallel ops of a step (tens of microseconds) so a warm worker picks up the next job at once.
constexpr auto kWorkerSpin = std::chrono::microseconds(60);
constexpr auto kCallerSpin = std::chrono::microseconds(30);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// The job word: epoch (high 32 bits) | participants (8 bits) | next unclaimed chunk (24 bits).
// Claiming a chunk is one CAS on it; a CAS from a thread that read an older epoch fails, so a
// late worker can never claim (or take a slot in) a job it did not read the fields of.
constexpr std::uint64_t kChunkBits = 24, kPartBits = 8;
constexpr std::uint64_t kChunkMask = (std::uint64_t{1} << kChunkBits) - 1;
constexpr std::uint64_t kPartOne = std::uint64_t{1} << kChunkBits;
constexpr std::uint64_t kPartMask = ((std::uint64_t{1} << kPartBits) - 1) << kChunkBits;
constexpr int kEpochShift = kChunkBits + kPartBits;
constexpr std::int64_t kMaxChunks = std::int64_t{1} << 20;

thread_local int t_slot = 0;           // pool_slot(): the running chunk's index
thread_local bool t_in_chunk = false;  // nested calls run inline

struct Pool {
  std::mutex owner;  // held by the thread whose job is published (try_lock: others run inline)
  std::atomic<std::uint64_t> state{0};
  // The job's fields, written by the owner before it publishes a new epoch (release) and read by
  // participants after they load it (acquire). Atomics because a late worker may read them while
  // the next job overwrites them; it then fails its CAS and discards what it read.
  std::atomic<ChunkFn> fn{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<std::int64_t> n{0}, nchunks{0};
  std::atomic<int> limit{1};
  std::atomic<int> done{0};  // chunks finished in this job
  std::mutex error_mu;
  std::exception_ptr error;
  // Sleeping workers wait on `wake` (bumped by the owner when sleepers > 0).
  std::atomic<int> sleepers{0};
  std::atomic<std::uint32_t> wake{0};
  std::vector<std::thread> workers;  // grown under `owner`; never joined (the pool lives forever)

  static std::int64_t bound(std::int64_t n, std::int64_t chunks, std::int64_t c) {
    // Chunk c is [n*c/chunks, n*(c+1)/chunks): sizes differ by at most one.
    return static_cast<std::int64_t>(static_cast<__int128>(n) * c / chunks);
  }

  void run_chunk(std::int64_t c, std::int64_t total, std::int64_t chunks, ChunkFn f, void* x) {
    try {
      f(x, bound(total, chunks, c), bound(total, chunks, c + 1));
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
    if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) done.notify_all();
  }

  // Claims and runs chunks of the job of epoch `epoch` until none is left. `slot` < 0: this
  // thread is not yet one of the job's participants (a worker); its first claim makes it one,
  // unless the job already has `limit` (its thread count).
  void participate(std::uint64_t epoch, int slot) {
    std::uint64_t s = state.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> kEpochShift) != epoch) return;
      const std::int64_t chunks = nchunks.load(std::memory_order_relaxed);
      const std::int64_t total = n.load(std::memory_order_relaxed);
      const int lim = limit.load(std::memory_order_relaxed);
      ChunkFn f = fn.load(std::memory_order_relaxed);
      void* x = ctx.load(std::memory_order_relaxed);
      const auto c = static_cast<std::int64_t>(s & kChunkMask);
      const auto parts = static_cast<int>((s & kPartMask) >> kChunkBits);
      if (c >= chunks || (slot < 0 && parts >= lim)) return;
      const std::uint64_t next = s + 1 + (slot < 0 ? kPartOne : 0);
      if (!state.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        continue;  // s holds the new value
      }
      // The CAS saw epoch `epoch` with chunk c unclaimed: the job cannot have ended since the
      // fields were read, so they are this job's.
      if (slot < 0) slot = parts;
      const int saved = t_slot;
      t_slot = static_cast<int>(c);
      t_in_chunk = true;
      run_chunk(c, total, chunks, f, x);
      t_in_chunk = false;
      t_slot = saved;
      s = state.load(std::memory_order_acquire);
    }
  }

  void worker_main() {
#if defined(_OPENMP)
    // A GEMM in a chunk stays on its thread with OpenBLAS's OpenMP build too (it sizes its team
    // by this thread's nthreads ICV); this thread's own setting, nobody else's.
    omp_set_num_threads(1);
#endif
    std::uint64_t seen = state.load(std::memory_order_acquire) >> kEpochShift;
    for (;;) {
      std::uint64_t s = state.load(std::memory_order_acquire);
      if ((s >> kEpochShift) == seen) {
        const auto until = std::chrono::steady_clock::now() + kWorkerSpin;
        for (int i = 0;; ++i) {
          cpu_relax();
          s = state.load(std::memory_order_acquire);
          if ((s >> kEpochShift) != seen) break;
          if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) break;
        }
        if ((s >> kEpochShift) == seen) {
          // Register as a sleeper, then look again: the owner publishes and then reads
          // `sleepers` (both seq_cst), so either it sees us and bumps `wake`, or we see its job.
          sleepers.fetch_add(1);
          const std::uint32_t w = wake.load();
          if ((state.load() >> kEpochShift) == seen) wake.wait(w);
          sleepers.fetch_sub(1);
          continue;
        }
      }
      seen = s >> kEpochShift;
      participate(seen, -1);
    }
  }

  void ensure_workers(int count) {
    while (static_cast<int>(workers.size()) < count) {
      workers.emplace_back([this] { worker_main(); });
    }
  }
};

Pool* g_pool = nullptr;
std::once_flag g_pool_once;

Pool& pool() {
  std::call_once(g_pool_once, [] {
    // Never destroyed: workers may still be polling during static teardown, and ops may run from
    // static destructors. A forked child starts a fresh pool (its parent's workers do not exist
    // there); the parent's is left as it is.
    g_pool = new Pool;                                            // NOLINT: intentionally immortal
    pthread_atfork(nullptr, nullptr, [] { g_pool = new Pool; });  // NOLINT: as above
  });
  return *g_pool;
}

// The same chunks as a pooled run, one after another on the caller: a kernel whose rounding
// depends on where its range starts (a vector body and a scalar tail) then gives the same bits
// whether its job ran on the pool or inline (a data loader's thread holding the pool, say).
void run_inline(std::int64_t n, std::int64_t chunks, ChunkFn fn, void* ctx) {
  const int saved = t_slot;
  const bool nested = t_in_chunk;
  t_in_chunk = true;
  std::exception_ptr error;  // every chunk runs, as in a pooled run; the first error is rethrown
  for (std::int64_t c = 0; c < chunks; ++c) {
    t_slot = static_cast<int>(c);
    try {
      fn(ctx, Pool::bound(n, chunks, c), Pool::bound(n, chunks, c + 1));
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  t_slot = saved;
  t_in_chunk = nested;
  if (error) std::rethrow_exception(error);
}

}  // namespace

int pool_slot() {
  return t_slot;
}

void run_parallel(std::int64_t n, int threads, std::int64_t max_chunks, ChunkFn fn, void* ctx) {
  if (n <= 0) return;
  threads = std::clamp(threads, 1, kMaxPoolThreads);
  const std::int64_t chunks = std::min({n, std::max<std::int64_t>(max_chunks, 1), kMaxChunks});
  bool inline_run = threads == 1 || chunks == 1 || t_in_chunk;
#if defined(_OPENMP)
  // Inside a user's parallel region every team member is already a thread of its own.
  inline_run = inline_run || omp_in_parallel();
#endif
  if (inline_run) return run_inline(n, chunks, fn, ctx);
  Pool& p = pool();
  std::unique_lock<std::mutex> lock(p.owner, std::try_to_lock);
  // Another thread's job holds the pool: this thread works alone.
  if (!lock.owns_lock()) return run_inline(n, chunks, fn, ctx);
  const int limit = static_cast<int>(std::min<std::int64_t>(threads, chunks));
  p.ensure_workers(limit - 1);
  p.fn.store(fn, std::memory_order_relaxed);
  p.ctx.store(ctx, std::memory_order_relaxed);
  p.n.store(n, std::memory_order_relaxed);
  p.nchunks.store(chunks, std::memory_order_relaxed);
  p.limit.store(limit, std::memory_order_relaxed);
  p.done.store(0, std::memory_order_relaxed);
  const std::uint64_t epoch = (p.state.load(std::memory_order_relaxed) >> kEpochShift) + 1;
  // The caller holds slot 0 (participants = 1) from the start.
  p.state.store((epoch << kEpochShift) | kPartOne);  // seq_cst: see worker_main
  if (p.sleepers.load() > 0) {
    p.wake.fetch_add(1);
    p.wake.notify_all();
  }
  {
#if defined(_OPENMP)
    // As on the workers (worker_main), for the caller's chunks only: its ICV is restored below.
    const int user_threads = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    p.participate(epoch, 0);
#if defined(_OPENMP)
    omp_set_num_threads(user_threads);
#endif
  }
  // Every chunk is claimed; wait for those still running on workers.
  const auto until = std::chrono::steady_clock::now() + kCallerSpin;
  int d = p.done.load(std::memory_order_acquire);
  for (int i = 0; d < chunks; ++i) {
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) {
      p.done.wait(d, std::memory_order_acquire);
    } else {
      cpu_relax();
    }
    d = p.done.load(std::memory_order_acquire);
  }
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> elock(p.error_mu);
    std::swap(error, p.error);
  }
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

}  // namespace loom::detail
