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
  // Set: this buffer is a slice of `parent`'s storage (a jit arena), which it keeps alive and
  // which frees the memory.
  std::shared_ptr<Buffer> parent;
  ~Buffer();
  static std::shared_ptr<Buffer> allocate(std::size_t bytes);
  /// Zero-filled storage whose pages the OS commits only when first written: reading it maps
  /// the shared zero page, so large zeros made this way cost no physical memory until written.
  static std::shared_ptr<Buffer> allocate_zero_pages(std::size_t bytes);
};

/// jit's static arena (src/transforms/fused_replay.cpp): while a target is installed on this
/// thread, the first Buffer::allocate of exactly `cap` rounded bytes returns a slice of `arena` at
/// `offset` instead of a pooled block (what lets an op's own `Array::empty` land in the arena
/// without an `out=` parameter). `given` then holds the slice, so that the caller can check the
/// slice went to the op's result and not to a temporary that outlives the op.
struct ArenaTarget {
  std::shared_ptr<Buffer> arena;
  std::size_t offset = 0, cap = 0;
  bool used = false;
  std::weak_ptr<Buffer> given;
};
/// Installs `t` (null: none) on this thread and returns the previous target.
ArenaTarget* set_arena_target(ArenaTarget* t);
/// The 64-byte rounding Buffer::allocate applies (an arena slot's size).
std::size_t buffer_capacity(std::size_t bytes);

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
