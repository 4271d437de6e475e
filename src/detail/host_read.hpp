// Private: kernels that read their own operands' values on the host.
//
// take's indices, one_hot's classes, accuracy's labels, bernoulli's probabilities: a primitive
// that inspects an operand as part of computing its output is not a host read by the user's
// code (its impl recomputes from the replayed operand under jit), so it suspends the jit/vmap
// host-read hook while it reads.
//   detail::KernelRead reading;  const auto v = indices.to_vector<double>();
#pragma once

#include "loom/array.hpp"

namespace loom::detail {

struct KernelRead {
  HostReadHook saved = host_read_hook();
  KernelRead() { host_read_hook() = nullptr; }
  ~KernelRead() { host_read_hook() = saved; }
  KernelRead(const KernelRead&) = delete;
  KernelRead& operator=(const KernelRead&) = delete;
};

}  // namespace loom::detail
