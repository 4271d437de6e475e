// distributed::shard_order: each process's slice of every global batch (see
// loom/distributed.hpp).
#include <string>
#include <vector>

#include "loom/distributed.hpp"
#include "loom/error.hpp"

namespace loom::distributed {

std::vector<std::int64_t> shard_order(std::span<const std::int64_t> global_order,
                                      std::int64_t global_batch_size, int index, int count) {
  if (count < 1 || index < 0 || index >= count) {
    throw Error("distributed.shard_order: process " + std::to_string(index) + " of " +
                std::to_string(count) + " is not a process");
  }
  if (global_batch_size < 1 || global_batch_size % count != 0) {
    throw Error("distributed.shard_order: the global batch size " +
                std::to_string(global_batch_size) + " must be a positive multiple of the " +
                std::to_string(count) + " processes");
  }
  const std::int64_t local = global_batch_size / count;
  const std::int64_t batches = static_cast<std::int64_t>(global_order.size()) / global_batch_size;
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(batches * local));
  for (std::int64_t b = 0; b < batches; ++b) {
    const auto first = global_order.begin() + b * global_batch_size + index * local;
    out.insert(out.end(), first, first + local);
  }
  return out;
}
std::vector<std::int64_t> shard_order(std::span<const std::int64_t> global_order,
                                      std::int64_t global_batch_size) {
  return shard_order(global_order, global_batch_size, process_index(), process_count());
}

}  // namespace loom::distributed
