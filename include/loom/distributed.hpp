// loom::distributed: data-parallel training across processes over MPI, after jax.distributed
// and JAX's collectives (lax.psum / pmean over processes, multihost_utils).
//
//   // mpirun -np 2 --allow-run-as-root ./train      (or ./train alone: one process)
//   loom::distributed::Guard dist;                    // initialize() ... shutdown()
//   auto shard = loom::distributed::shard_order(epoch_order, /*global_batch_size=*/128);
//   grads = loom::distributed::all_reduce_mean(grads);  // the same average on every process
//   if (loom::distributed::process_index() == 0) save_checkpoint(...);
//
// Without a launcher (no OMPI_COMM_WORLD_SIZE / PMIX_RANK / PMI_SIZE in the environment), or in
// a build without MPI (CMake LOOM_WITH_MPI=OFF), there is one process: every collective returns
// its input and nothing else changes.
//
// Every collective must be called by every process in the same order with trees of the same
// structure, as in JAX. Each one first compares a hash of its tree's structure (paths, shapes,
// dtypes) across processes: a mismatch is a loom::Error naming the first differing path on every
// process. A collective that waits longer than InitializeOptions::timeout_seconds for the
// others (a process died, hangs or took another branch) ends this process with a message
// "distributed.<op>: timed out after <T> s ..." and exit status 1, and OpenMPI's mpirun then
// ends the others: the job ends in bounded time. A process that dies or exits without
// shutdown() also makes mpirun end the others ("mpirun detected that one or more processes
// exited with non-zero status" / "... exiting improperly"), whatever they were doing. An error
// seen by one process only (a bad file) should end the job with abort() for the same reason.
//
// Reductions: `fast` uses MPI_Allreduce, whose order of additions depends on the MPI library
// and the process count (results agree to float32 rounding of that order; with 2 processes the
// single addition commutes, so it is exact). `deterministic` gathers every contribution on
// process 0, sums them there in process order (x0 + x1 + ... left to right, in the array's
// dtype) and broadcasts the total: bit-identical to one process summing the same shards in
// order, for any process count. The mean is that sum divided by process_count() in the dtype.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loom/array.hpp"
#include "loom/tree.hpp"

namespace loom::distributed {

enum class ReduceOrder { fast, deterministic };

struct InitializeOptions {
  /// A collective waiting longer than this for the other processes ends the job (see above).
  /// The LOOM_DISTRIBUTED_TIMEOUT environment variable (seconds) overrides it.
  double timeout_seconds = 300;
  /// The default order of all_reduce_sum / all_reduce_mean. LOOM_DISTRIBUTED_DETERMINISTIC=1
  /// in the environment selects `deterministic`.
  ReduceOrder reduce_order = ReduceOrder::fast;
  /// A lax axis name to bind over the processes (bind_axis_name), e.g. "batch"; empty: none.
  std::string axis_name;
};

/// jax.distributed.initialize: joins the processes started by the launcher (MPI_Init); with no
/// launcher, or without MPI, a single process. Idempotent; throws loom::Error when MPI fails.
///   loom::distributed::initialize({.timeout_seconds = 60});
void initialize(const InitializeOptions& options = {});
/// jax.distributed.shutdown: MPI_Finalize after a barrier (MPI_Abort when a collective failed,
/// ending every process). Safe to call when not initialized.
void shutdown();
bool is_initialized();
/// Ends every process now with `exit_code` (MPI_Abort; std::exit with one process): for an
/// error that only this process saw, so that the others do not wait in a collective.
///   catch (const loom::Error& e) { std::cerr << e.what(); loom::distributed::abort(1); }
[[noreturn]] void abort(int exit_code);
/// True when this build has MPI (LOOM_WITH_MPI) and the process was started by a launcher.
bool mpi_active();

/// initialize() in the constructor, shutdown() in the destructor.
///   int main() { loom::distributed::Guard dist({.axis_name = "batch"}); ... }
class Guard {
 public:
  explicit Guard(const InitializeOptions& options = {}) { initialize(options); }
  ~Guard() { shutdown(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
};

/// jax.process_index / jax.process_count (0 and 1 before initialize).
///   if (loom::distributed::process_index() == 0) std::cout << metrics;
int process_index();
int process_count();

/// Options of one reduction; an empty order means InitializeOptions::reduce_order.
struct ReduceOptions {
  std::optional<ReduceOrder> order = std::nullopt;
};

/// lax.psum over processes: every leaf summed elementwise across processes; every process gets
/// the totals. The leaves travel as one buffer per dtype (bucketing: one MPI call per dtype).
///   loom::Tree total = loom::distributed::all_reduce_sum(local_counts);
Tree all_reduce_sum(const Tree& tree, const ReduceOptions& options = {});
Array all_reduce_sum(const Array& x, const ReduceOptions& options = {});
/// lax.pmean over processes: all_reduce_sum / process_count (floating leaves only).
///   grads = loom::distributed::all_reduce_mean(grads);
Tree all_reduce_mean(const Tree& tree, const ReduceOptions& options = {});
Array all_reduce_mean(const Array& x, const ReduceOptions& options = {});
/// multihost_utils.broadcast_one_to_all: every process gets process `root`'s leaves.
///   params = loom::distributed::broadcast(params, 0);
Tree broadcast(const Tree& tree, int root = 0);
Array broadcast(const Array& x, int root = 0);
/// multihost_utils.process_allgather (tiled=False): each leaf stacked along a new leading axis
/// of size process_count(), in process order.
///   loom::Array all = loom::distributed::all_gather(local);   // (process_count, ...local)
Tree all_gather(const Tree& tree);
Array all_gather(const Array& x);
/// multihost_utils.sync_global_devices: waits until every process gets here.
void barrier();

/// A launch check: throws loom::Error on every process when `value` differs between processes,
/// naming `what` and the values. The mnist example passes its command line.
///   loom::distributed::check_same("config", "batch_size=128 epochs=5");
void check_same(std::string_view what, std::string_view value);

/// Binds a lax axis named `name` (loom/lax/collectives.hpp) whose members are the processes:
/// lax::psum(x, name) is all_reduce_sum(x). BatchNorm{.axis_name = name} then averages its
/// statistics across processes. Unbound by shutdown().
///   loom::distributed::bind_axis_name("batch");
void bind_axis_name(const std::string& name);

/// This process's share of an epoch: `global_order` cut into global batches of
/// `global_batch_size` (a partial last batch is dropped), each cut into process_count()
/// contiguous slices of global_batch_size / process_count() examples; returns slice
/// process_index() of every batch, in order. The global batch must divide evenly.
///   auto local = shard_order(epoch.order(), 128);   // 64 examples per batch on 2 processes
std::vector<std::int64_t> shard_order(std::span<const std::int64_t> global_order,
                                      std::int64_t global_batch_size);
/// The same for an explicit process (tests, tools).
std::vector<std::int64_t> shard_order(std::span<const std::int64_t> global_order,
                                      std::int64_t global_batch_size, int index, int count);

/// Time spent inside the collectives of this process since the last reset (waiting for the
/// others included), their number and the bytes sent.
struct CommStats {
  double seconds = 0;
  std::int64_t calls = 0;
  std::int64_t bytes = 0;
};
CommStats comm_stats();
void reset_comm_stats();

}  // namespace loom::distributed
