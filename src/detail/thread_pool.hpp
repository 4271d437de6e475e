// Private: loom's own pool of worker threads behind parallel_chunks/parallel_for (dispatch.hpp).
//
// Why not an OpenMP team: libgomp's threads spin for a long while after each region
// (GOMP_SPINCOUNT) and every region ends in a barrier that waits for the slowest thread. On a
// loaded machine a descheduled team member stalls the whole op and the spinning members burn the
// time slices the busy neighbours would otherwise leave to loom's own thread (issue 10: cnn_train
// 6x slower with one busy process per core). Here the work is cut into chunks (a few per thread for
// parallel_for and split GEMMs, one per thread for parallel_chunks) that the participants claim one
// at a time: the calling thread starts at once and takes every chunk no
// worker has claimed yet, so a worker that is not running costs nothing but its share; the caller
// waits only for chunks already running. Idle workers spin briefly, then sleep on a futex
// (std::atomic::wait), so an idle pool leaves the cores to others.
//
//   detail::run_parallel(n, /*threads=*/4, /*max_chunks=*/16, fn, &ctx);
//
// Runs inline (on the caller, one chunk) when it is nested in a chunk, when the caller is inside
// a user's OpenMP parallel region, or when another thread's job holds the pool: concurrent user
// threads then each keep a core instead of queueing behind one another.
#pragma once

#include <cstdint>

namespace loom::detail {

/// The type-erased body of a job: fn(ctx, begin, end).
using ChunkFn = void (*)(void* ctx, std::int64_t begin, std::int64_t end);

/// The most threads one job uses (workers + the caller).
inline constexpr int kMaxPoolThreads = 64;

/// Runs fn(ctx, b, e) over [0, n) cut into min(n, max_chunks) contiguous chunks (fixed bounds: the
/// split does not depend on who runs what), on at most `threads` threads including the caller.
/// The first exception thrown by a chunk is rethrown here after every chunk has run.
void run_parallel(std::int64_t n, int threads, std::int64_t max_chunks, ChunkFn fn, void* ctx);

/// The index of the chunk the calling thread is running (0 outside a job). Chunks run once each,
/// so the chunks running at the same time have distinct indices, and a chunk index names a fixed
/// range: per-chunk scratch or partial sums indexed by it (conv's kernel gradient) hold the same
/// values whichever threads ran which chunks, pooled or inline.
int pool_slot();

}  // namespace loom::detail
