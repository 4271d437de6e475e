// Private: the transport under loom::distributed. comm_mpi.cpp implements it over MPI when the
// build has LOOM_WITH_MPI, else as one process. Every call blocks until the collective completes;
// past InitializeOptions::timeout_seconds a watchdog ends the process with a message naming the
// collective (mpirun then ends the others). An MPI error code is a loom::Error and marks the
// transport failed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "loom/dtype.hpp"

namespace loom::distributed::detail {

/// Joins the job when a launcher started this process; returns false for a single process
/// (nothing initialized). `timeout_seconds` bounds every later call.
bool comm_init(double timeout_seconds);
void comm_finalize();
[[noreturn]] void comm_abort(int exit_code);
bool comm_built_with_mpi();
int comm_rank();
int comm_size();
/// True after a call failed: the processes may disagree on what comes next.
bool comm_failed();

/// In place: buf (count elements of dtype) becomes the elementwise sum over processes.
void comm_allreduce_sum(void* buf, std::size_t count, DType dtype, const char* op);
/// In place: the elementwise maximum of `count` uint64s.
void comm_allreduce_max_u64(std::uint64_t* buf, std::size_t count, const char* op);
/// recv (size() * bytes, root only; may be null elsewhere) gets every process's `bytes`.
void comm_gather(const void* send, void* recv, std::size_t bytes, int root, const char* op);
void comm_bcast(void* buf, std::size_t bytes, int root, const char* op);
/// recv (size() * bytes) gets every process's `bytes`, in process order.
void comm_allgather(const void* send, void* recv, std::size_t bytes, const char* op);
void comm_barrier(const char* op);

/// Seconds spent inside the calls above, their number and bytes contributed.
struct CommCounters {
  double seconds = 0;
  std::int64_t calls = 0, bytes = 0;
};
CommCounters& comm_counters();

}  // namespace loom::distributed::detail
