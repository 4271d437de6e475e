// loom::distributed: process setup and collectives over trees (see loom/distributed.hpp).
// A tree travels as one contiguous buffer per dtype (DDP's buckets; one MPI call each), after a
// structure check that costs one 16-byte all-reduce.
#include "loom/distributed.hpp"

#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "distributed/comm.hpp"
#include "loom/error.hpp"
#include "loom/lax/collectives.hpp"
#include "loom/numpy/elementwise.hpp"

namespace loom::distributed {
namespace {

struct State {
  bool initialized = false;
  InitializeOptions options;
  std::vector<std::string> axes;  // bound by bind_axis_name, unbound by shutdown
};
State& state() {
  static State s;
  return s;
}

// FNV-1a: a structure fingerprint, not a security hash.
std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Every process's string, in process order (lengths first, then the padded bytes).
std::vector<std::string> gather_strings(std::string_view mine, const char* op) {
  const int n = process_count();
  std::uint64_t len = mine.size();
  std::vector<std::uint64_t> lens(static_cast<std::size_t>(n));
  detail::comm_allgather(&len, lens.data(), sizeof len, op);
  std::uint64_t max_len = 0;
  for (auto l : lens) max_len = std::max(max_len, l);
  std::string padded(mine);
  padded.resize(max_len);
  std::string all(max_len * static_cast<std::size_t>(n), '\0');
  detail::comm_allgather(padded.data(), all.data(), max_len, op);
  std::vector<std::string> out;
  for (int r = 0; r < n; ++r) out.push_back(all.substr(r * max_len, lens[r]));
  return out;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "path: dtype[shape]" -> ("path", "dtype[shape]").
std::pair<std::string, std::string> split_line(const std::string& line) {
  const auto colon = line.rfind(": ");
  if (colon == std::string::npos) return {line, ""};
  return {line.substr(0, colon), line.substr(colon + 2)};
}

// Every process calls this with its structure; all of them agree whether they match (a max of
// the hash and of its complement equals one's own on every process only if all are equal), and
// on a mismatch all throw the same message naming the first differing path.
void check_structure(const std::string& structure, const char* op) {
  if (process_count() == 1) return;
  const std::uint64_t h = fnv1a(structure);
  std::uint64_t both[2] = {h, ~h};
  detail::comm_allreduce_max_u64(both, 2, op);
  if (both[0] == h && both[1] == ~h) return;
  const std::vector<std::string> all = gather_strings(structure, op);
  const std::vector<std::string> ref = lines_of(all[0]);
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    const std::vector<std::string> other = lines_of(all[r]);
    std::size_t i = 0;
    while (i < ref.size() && i < other.size() && ref[i] == other[i]) ++i;
    std::string detail;
    if (i < ref.size() && i < other.size()) {
      auto [p0, t0] = split_line(ref[i]);
      auto [p1, t1] = split_line(other[i]);
      if (p0 == p1) {
        detail = "at \"" + p0 + "\" process 0 has " + t0 + " but process " + std::to_string(r) +
                 " has " + t1;
      } else {
        detail = "process 0 has a leaf \"" + p0 + "\" (" + t0 + ") where process " +
                 std::to_string(r) + " has \"" + p1 + "\" (" + t1 + ")";
      }
    } else if (i < ref.size()) {
      detail = "process " + std::to_string(r) + " lacks \"" + split_line(ref[i]).first +
               "\" that process 0 has";
    } else {
      detail = "process " + std::to_string(r) + " has an extra leaf \"" +
               split_line(other[i]).first + "\"";
    }
    throw Error(std::string("distributed.") + op +
                ": the trees differ across processes (structure, shapes or dtypes): " + detail);
  }
}

void check_array(const Array& x, const char* op) {
  if (!x.valid()) throw Error(std::string("distributed.") + op + ": got an empty array");
}

ReduceOrder order_of(const ReduceOptions& o) {
  return o.order.value_or(state().options.reduce_order);
}

template <typename T>
void add_into(T* acc, const T* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) acc[i] += x[i];
}

// Sums `count` elements of `dtype` in place across processes, in the requested order.
void sum_buffer(void* buf, std::size_t count, DType dtype, ReduceOrder order, const char* op) {
  if (process_count() == 1 || count == 0) return;
  if (order == ReduceOrder::fast) {
    detail::comm_allreduce_sum(buf, count, dtype, op);
    return;
  }
  // Deterministic: contributions gathered on process 0, summed there left to right in process
  // order, the total broadcast.
  const std::size_t bytes = count * itemsize(dtype);
  const int n = process_count();
  const bool root = process_index() == 0;
  std::vector<unsigned char> all(root ? bytes * static_cast<std::size_t>(n) : 0);
  detail::comm_gather(buf, root ? all.data() : nullptr, bytes, 0, op);
  if (root) {
    for (int r = 1; r < n; ++r) {
      const void* x = all.data() + bytes * static_cast<std::size_t>(r);
      switch (dtype) {
        case DType::float32:
          add_into(static_cast<float*>(buf), static_cast<const float*>(x), count);
          break;
        case DType::float64:
          add_into(static_cast<double*>(buf), static_cast<const double*>(x), count);
          break;
        case DType::int32:
          add_into(static_cast<std::int32_t*>(buf), static_cast<const std::int32_t*>(x), count);
          break;
        case DType::uint32:
          add_into(static_cast<std::uint32_t*>(buf), static_cast<const std::uint32_t*>(x), count);
          break;
        default:
          throw Error(std::string("distributed.") + op + ": cannot sum " + dtype_name(dtype) +
                      " arrays");
      }
    }
  }
  detail::comm_bcast(buf, bytes, 0, op);
}

// The leaves of a tree packed by dtype: one buffer per dtype, the leaves in flattening order.
struct Packed {
  std::vector<std::pair<KeyPath, Array>> leaves;
  std::map<DType, std::vector<std::size_t>> by_dtype;  // leaf indices
};

Packed pack(const Tree& tree) {
  Packed p;
  p.leaves = tree_leaves_with_path(tree);
  for (std::size_t i = 0; i < p.leaves.size(); ++i)
    p.by_dtype[p.leaves[i].second.dtype()].push_back(i);
  return p;
}

Tree rebuild(const Tree& like, std::vector<Array> leaves) {
  return tree_unflatten(tree_flatten(like).second, std::move(leaves));
}

Tree reduce_tree(const Tree& tree, const ReduceOptions& options, bool mean, const char* op) {
  check_structure(tree.str(), op);
  if (process_count() == 1) return tree;  // one process: the tree itself, as without MPI
  Packed p = pack(tree);
  std::vector<Array> out(p.leaves.size());
  const ReduceOrder order = order_of(options);
  const double n = process_count();
  for (auto& [dtype, idx] : p.by_dtype) {
    if (dtype == DType::bool_) {
      throw Error(std::string("distributed.") + op + ": cannot sum the bool leaf \"" + [&] {
        std::string s;
        for (auto& k : p.leaves[idx[0]].first) s += (s.empty() ? "" : "/") + k;
        return s;
      }() + "\"");
    }
    std::size_t count = 0;
    for (std::size_t i : idx) count += static_cast<std::size_t>(p.leaves[i].second.size());
    Array bucket = Array::empty(Shape{static_cast<std::int64_t>(count)}, dtype);
    auto* dst = static_cast<unsigned char*>(bucket.raw_mutable_data());
    std::size_t at = 0;
    for (std::size_t i : idx) {
      const Array& a = p.leaves[i].second;
      std::memcpy(dst + at, a.raw_data(), a.nbytes());
      at += a.nbytes();
    }
    sum_buffer(dst, count, dtype, order, op);
    if (mean) {
      if (dtype == DType::float32) {
        auto* v = reinterpret_cast<float*>(dst);
        const float d = static_cast<float>(n);
        for (std::size_t i = 0; i < count; ++i) v[i] /= d;
      } else if (dtype == DType::float64) {
        auto* v = reinterpret_cast<double*>(dst);
        for (std::size_t i = 0; i < count; ++i) v[i] /= n;
      }
    }
    at = 0;
    for (std::size_t i : idx) {
      const Array& a = p.leaves[i].second;
      Array leaf = Array::empty(a.shape(), dtype);
      std::memcpy(leaf.raw_mutable_data(), dst + at, a.nbytes());
      at += a.nbytes();
      // lax.pmean of integers is a true division: float32.
      if (mean && !is_floating(dtype)) leaf = numpy::divide(leaf, numpy::weak_scalar(n, leaf));
      out[i] = std::move(leaf);
    }
  }
  return rebuild(tree, std::move(out));
}

}  // namespace

void initialize(const InitializeOptions& options) {
  if (state().initialized) return;
  InitializeOptions o = options;
  if (const char* t = std::getenv("LOOM_DISTRIBUTED_TIMEOUT")) {
    char* end = nullptr;
    const double v = std::strtod(t, &end);
    if (end == t || v <= 0) {
      throw Error(std::string("distributed.initialize: LOOM_DISTRIBUTED_TIMEOUT=\"") + t +
                  "\" is not a positive number of seconds");
    }
    o.timeout_seconds = v;
  }
  if (const char* d = std::getenv("LOOM_DISTRIBUTED_DETERMINISTIC")) {
    if (std::string(d) == "1") o.reduce_order = ReduceOrder::deterministic;
  }
  if (!(o.timeout_seconds > 0)) {
    throw Error("distributed.initialize: timeout_seconds must be positive, got " +
                std::to_string(o.timeout_seconds));
  }
  detail::comm_init(o.timeout_seconds);
  state().initialized = true;
  state().options = o;
  if (!o.axis_name.empty()) bind_axis_name(o.axis_name);
}

void shutdown() {
  if (!state().initialized) return;
  for (const std::string& a : state().axes) lax::unbind_axis(a);
  state().axes.clear();
  state().initialized = false;
  if (!detail::comm_failed() && process_count() > 1) {
    try {
      detail::comm_barrier("shutdown");
    } catch (const Error&) {
      // A process that never arrives: end them all rather than hang in MPI_Finalize.
    }
  }
  detail::comm_finalize();  // aborts the job when a collective failed
}

bool is_initialized() {
  return state().initialized;
}
bool mpi_active() {
  return detail::comm_built_with_mpi() && detail::comm_size() > 1;
}

void abort(int exit_code) {
  detail::comm_abort(exit_code);
}

int process_index() {
  return detail::comm_rank();
}
int process_count() {
  return detail::comm_size();
}

Tree all_reduce_sum(const Tree& tree, const ReduceOptions& options) {
  return reduce_tree(tree, options, false, "all_reduce_sum");
}
Array all_reduce_sum(const Array& x, const ReduceOptions& options) {
  check_array(x, "all_reduce_sum");
  return reduce_tree(Tree(x.detached()), options, false, "all_reduce_sum").leaf();
}
Tree all_reduce_mean(const Tree& tree, const ReduceOptions& options) {
  return reduce_tree(tree, options, true, "all_reduce_mean");
}
Array all_reduce_mean(const Array& x, const ReduceOptions& options) {
  check_array(x, "all_reduce_mean");
  return reduce_tree(Tree(x.detached()), options, true, "all_reduce_mean").leaf();
}

Tree broadcast(const Tree& tree, int root) {
  if (root < 0 || root >= process_count()) {
    throw Error("distributed.broadcast: root " + std::to_string(root) + " is not a process (0.." +
                std::to_string(process_count() - 1) + ")");
  }
  check_structure(tree.str(), "broadcast");
  if (process_count() == 1) return tree;
  auto leaves = tree_leaves(tree);
  std::size_t bytes = 0;
  for (const Array& a : leaves) bytes += a.nbytes();
  std::vector<unsigned char> buf(bytes);
  std::size_t at = 0;
  for (const Array& a : leaves) {
    std::memcpy(buf.data() + at, a.raw_data(), a.nbytes());
    at += a.nbytes();
  }
  detail::comm_bcast(buf.data(), bytes, root, "broadcast");
  at = 0;
  std::vector<Array> out;
  for (const Array& a : leaves) {
    Array leaf = Array::empty(a.shape(), a.dtype());
    std::memcpy(leaf.raw_mutable_data(), buf.data() + at, a.nbytes());
    at += a.nbytes();
    out.push_back(std::move(leaf));
  }
  return rebuild(tree, std::move(out));
}
Array broadcast(const Array& x, int root) {
  check_array(x, "broadcast");
  return broadcast(Tree(x.detached()), root).leaf();
}

Tree all_gather(const Tree& tree) {
  check_structure(tree.str(), "all_gather");
  auto leaves = tree_leaves(tree);
  std::size_t bytes = 0;
  for (const Array& a : leaves) bytes += a.nbytes();
  std::vector<unsigned char> mine(bytes);
  std::size_t at = 0;
  for (const Array& a : leaves) {
    std::memcpy(mine.data() + at, a.raw_data(), a.nbytes());
    at += a.nbytes();
  }
  const int n = process_count();
  std::vector<unsigned char> all(bytes * static_cast<std::size_t>(n));
  detail::comm_allgather(mine.data(), all.data(), bytes, "all_gather");
  std::vector<Array> out;
  at = 0;
  for (const Array& a : leaves) {
    Shape s{n};
    for (std::int64_t d : a.shape()) s.push_back(d);
    Array leaf = Array::empty(s, a.dtype());
    auto* dst = static_cast<unsigned char*>(leaf.raw_mutable_data());
    for (int r = 0; r < n; ++r) {
      std::memcpy(dst + a.nbytes() * static_cast<std::size_t>(r),
                  all.data() + bytes * static_cast<std::size_t>(r) + at, a.nbytes());
    }
    at += a.nbytes();
    out.push_back(std::move(leaf));
  }
  return rebuild(tree, std::move(out));
}
Array all_gather(const Array& x) {
  check_array(x, "all_gather");
  return all_gather(Tree(x.detached())).leaf();
}

void barrier() {
  detail::comm_barrier("barrier");
}

void check_same(std::string_view what, std::string_view value) {
  if (process_count() == 1) return;
  const std::vector<std::string> all = gather_strings(value, "check_same");
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      throw Error("distributed.check_same: the processes were launched with different " +
                  std::string(what) + ": process 0 has \"" + all[0] + "\" but process " +
                  std::to_string(r) + " has \"" + all[r] + "\"");
    }
  }
}

void bind_axis_name(const std::string& name) {
  lax::bind_axis(
      name, {.psum = [](const Array& x) { return all_reduce_sum(x); }, .size = process_count()});
  for (const std::string& a : state().axes)
    if (a == name) return;
  state().axes.push_back(name);
}

CommStats comm_stats() {
  const auto& c = detail::comm_counters();
  return {.seconds = c.seconds, .calls = c.calls, .bytes = c.bytes};
}
void reset_comm_stats() {
  detail::comm_counters() = {};
}

}  // namespace loom::distributed
