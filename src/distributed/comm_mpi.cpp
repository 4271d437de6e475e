// The transport of loom::distributed over MPI (blocking collectives under a watchdog, so a lost
// process ends the job rather than hanging it), or a single process when the build has no MPI
// or no launcher started this process.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "distributed/comm.hpp"
#include "loom/error.hpp"

#ifndef LOOM_WITH_MPI
#define LOOM_WITH_MPI 0
#endif
#if LOOM_WITH_MPI
// The C API only: OpenMPI's and MPICH's mpi.h pull in the removed C++ bindings otherwise.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace loom::distributed::detail {
namespace {

struct CommState {
  bool active = false;  // MPI initialized by us
  bool failed = false;
  int rank = 0, size = 1;
  double timeout = 300;
};
CommState& state() {
  static CommState s;
  return s;
}

// A launcher that starts MPI jobs leaves its mark in the environment: OpenMPI's mpirun,
// PMIx (srun, prterun) and MPICH's hydra.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

std::string where() {
  return " (process " + std::to_string(state().rank) + " of " + std::to_string(state().size) + ")";
}

// Counts the time and bytes of one call.
struct Timed {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::size_t bytes;
  explicit Timed(std::size_t b) : bytes(b) {}
  ~Timed() {
    CommCounters& c = comm_counters();
    c.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    c.calls += 1;
    c.bytes += static_cast<std::int64_t>(bytes);
  }
};

void check_usable(const char* op) {
  if (state().failed) {
    throw Error(std::string("distributed.") + op +
                ": an earlier collective failed; the processes are out of step" + where());
  }
}

#if LOOM_WITH_MPI

[[noreturn]] void mpi_fail(const char* op, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  state().failed = true;
  throw Error(std::string("distributed.") + op + ": MPI error: " + std::string(text, len) +
              where());
}

void check(const char* op, int code) {
  if (code != MPI_SUCCESS) mpi_fail(op, code);
}

// The watchdog: a thread that ends this process with a clear message when a collective has
// waited past the timeout (a process died, hangs, or called another collective). The blocking
// MPI collectives run at full speed (the nonblocking ones polled against a deadline took twice
// as long for a 3 MB all-reduce); ending the process makes mpirun end the others.
struct Watchdog {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::atomic<std::int64_t> deadline_ns{0};  // 0: no collective in flight
  std::atomic<const char*> op{nullptr};
  std::thread thread;

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void start() {
    stop = false;
    const auto poll = std::chrono::milliseconds(
        std::clamp(static_cast<long>(state().timeout * 50), 10L, 1000L));  // timeout / 20
    thread = std::thread([this, poll] {
      std::unique_lock lock(mu);
      while (!stop) {
        cv.wait_for(lock, poll);
        const std::int64_t d = deadline_ns.load();
        if (d != 0 && now_ns() > d) {
          std::fprintf(stderr,
                       "distributed.%s: timed out after %g s waiting for the other processes "
                       "(process %d of %d): one of them died, hangs, or called another "
                       "collective; ending the job (raise LOOM_DISTRIBUTED_TIMEOUT if a step "
                       "legitimately takes longer)\n",
                       op.load(), state().timeout, state().rank, state().size);
          std::fflush(stderr);
          std::_Exit(1);
        }
      }
    });
  }
  // A process that never called shutdown() still exits cleanly (a joinable thread would not).
  ~Watchdog() { finish(); }
  void finish() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }
};
Watchdog& watchdog() {
  static Watchdog w;
  return w;
}

// Arms the watchdog for one collective.
struct Watch {
  explicit Watch(const char* op) {
    watchdog().op.store(op);
    watchdog().deadline_ns.store(Watchdog::now_ns() +
                                 static_cast<std::int64_t>(state().timeout * 1e9));
  }
  ~Watch() { watchdog().deadline_ns.store(0); }
};

MPI_Datatype mpi_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::float32:
      return MPI_FLOAT;
    case DType::float64:
      return MPI_DOUBLE;
    case DType::int32:
      return MPI_INT32_T;
    case DType::uint32:
      return MPI_UINT32_T;
    default:
      throw Error(std::string("distributed.") + op + ": cannot sum " + dtype_name(dtype) +
                  " arrays; expected float32, float64, int32 or uint32");
  }
}

int int_count(std::size_t n, const char* op) {
  if (n > static_cast<std::size_t>(INT_MAX)) {
    throw Error(std::string("distributed.") + op + ": " + std::to_string(n) +
                " bytes per process is over the 2 GiB one MPI call carries");
  }
  return static_cast<int>(n);
}

#endif  // LOOM_WITH_MPI

}  // namespace

CommCounters& comm_counters() {
  static CommCounters c;
  return c;
}

bool comm_built_with_mpi() {
  return LOOM_WITH_MPI != 0;
}
int comm_rank() {
  return state().rank;
}
int comm_size() {
  return state().size;
}
bool comm_failed() {
  return state().failed;
}

bool comm_init(double timeout_seconds) {
  state().timeout = timeout_seconds;
#if LOOM_WITH_MPI
  if (state().active || !launched_by_mpi()) return state().active;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      throw Error("distributed.initialize: MPI_Init_thread failed");
    }
  }
  // Errors come back as codes (turned into loom::Error) instead of aborting inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &state().rank);
  MPI_Comm_size(MPI_COMM_WORLD, &state().size);
  state().active = true;
  state().failed = false;
  watchdog().start();
  return true;
#else
  return false;
#endif
}

void comm_finalize() {
#if LOOM_WITH_MPI
  if (!state().active) return;
  watchdog().finish();
  if (state().failed) comm_abort(1);
  state().active = false;
  state().rank = 0;
  state().size = 1;
  MPI_Finalize();
#endif
}

void comm_abort(int exit_code) {
#if LOOM_WITH_MPI
  if (state().active) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  std::exit(exit_code);
}

void comm_allreduce_sum([[maybe_unused]] void* buf, std::size_t count, [[maybe_unused]] DType dtype,
                        const char* op) {
  check_usable(op);
  if (state().size == 1 || count == 0) return;
#if LOOM_WITH_MPI
  Timed t(count * itemsize(dtype));
  const MPI_Datatype type = mpi_type(dtype, op);
  // MPI counts are ints: large buffers go in chunks.
  constexpr std::size_t kChunk = std::size_t(1) << 30;
  auto* p = static_cast<unsigned char*>(buf);
  for (std::size_t at = 0; at < count; at += kChunk) {
    const std::size_t n = std::min(kChunk, count - at);
    Watch w(op);
    check(op, MPI_Allreduce(MPI_IN_PLACE, p + at * itemsize(dtype), static_cast<int>(n), type,
                            MPI_SUM, MPI_COMM_WORLD));
  }
#endif
}

void comm_allreduce_max_u64([[maybe_unused]] std::uint64_t* buf, std::size_t count,
                            const char* op) {
  check_usable(op);
  if (state().size == 1 || count == 0) return;
#if LOOM_WITH_MPI
  Timed t(count * 8);
  Watch w(op);
  check(op, MPI_Allreduce(MPI_IN_PLACE, buf, int_count(count, op), MPI_UINT64_T, MPI_MAX,
                          MPI_COMM_WORLD));
#endif
}

void comm_gather(const void* send, void* recv, std::size_t bytes, [[maybe_unused]] int root,
                 const char* op) {
  check_usable(op);
#if LOOM_WITH_MPI
  if (state().size > 1) {
    Timed t(bytes);
    Watch w(op);
    check(op, MPI_Gather(send, int_count(bytes, op), MPI_BYTE, recv, int_count(bytes, op), MPI_BYTE,
                         root, MPI_COMM_WORLD));
    return;
  }
#endif
  if (bytes > 0 && recv != send) std::memcpy(recv, send, bytes);
}

void comm_bcast([[maybe_unused]] void* buf, std::size_t bytes, [[maybe_unused]] int root,
                const char* op) {
  check_usable(op);
  if (state().size == 1 || bytes == 0) return;
#if LOOM_WITH_MPI
  Timed t(bytes);
  Watch w(op);
  check(op, MPI_Bcast(buf, int_count(bytes, op), MPI_BYTE, root, MPI_COMM_WORLD));
#endif
}

void comm_allgather(const void* send, void* recv, std::size_t bytes, const char* op) {
  check_usable(op);
#if LOOM_WITH_MPI
  if (state().size > 1) {
    Timed t(bytes);
    Watch w(op);
    check(op, MPI_Allgather(send, int_count(bytes, op), MPI_BYTE, recv, int_count(bytes, op),
                            MPI_BYTE, MPI_COMM_WORLD));
    return;
  }
#endif
  if (bytes > 0 && recv != send) std::memcpy(recv, send, bytes);
}

void comm_barrier(const char* op) {
  check_usable(op);
  if (state().size == 1) return;
#if LOOM_WITH_MPI
  Timed t(0);
  Watch w(op);
  check(op, MPI_Barrier(MPI_COMM_WORLD));
#endif
}

}  // namespace loom::distributed::detail
