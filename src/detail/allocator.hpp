// Private: the buffers behind loom::Array, 64-byte aligned and recycled through a caching pool
// so that a training step, which allocates the same sizes every step, does not call malloc for
// every op. Freed blocks are kept per exact (64-byte-rounded) size: first in the freeing
// thread's cache (no lock), past its cap or at thread exit in a global pool (one mutex), itself
// capped.
#pragma once

#include <cstddef>
#include <memory>

namespace loom::detail {

struct Buffer {
  void* data = nullptr;
  std::size_t bytes = 0;  // rounded capacity
  bool mapped = false;    // true: anonymous pages from mmap, returned with munmap
  ~Buffer();
  static std::shared_ptr<Buffer> allocate(std::size_t bytes);
  /// Zero-filled storage whose pages the OS commits only when first written: reading it maps
  /// the shared zero page, so large zeros made this way cost no physical memory until written.
  static std::shared_ptr<Buffer> allocate_zero_pages(std::size_t bytes);
};

/// The global pool plus the calling thread's cache (other threads' caches are not counted).
struct PoolStats {
  std::size_t cached_bytes = 0;
  std::size_t hits = 0;
  std::size_t misses = 0;
};
PoolStats pool_stats();
/// Frees every block cached by the calling thread and the global pool (tests and long-running
/// programs that change sizes); other threads' caches stay until those threads exit.
void pool_release();

}  // namespace loom::detail
