// The caching buffer pool behind loom::Array (see detail/allocator.hpp).
#include "detail/allocator.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/error.hpp"

namespace loom::detail {
namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kMaxCachedBytes = std::size_t{1} << 30;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPoolEnabled = false;  // let AddressSanitizer see every use-after-free
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPoolEnabled = false;
#else
constexpr bool kPoolEnabled = true;
#endif
#else
constexpr bool kPoolEnabled = true;
#endif

// Freed blocks live first in the freeing thread's cache (no lock: a training step allocates and
// frees on one thread), then, past that cache's cap or when its thread exits, in the global pool
// (one mutex, taken only on a thread-cache miss or overflow).
constexpr std::size_t kMaxThreadCachedBytes = std::size_t{256} << 20;

using FreeLists = std::unordered_map<std::size_t, std::vector<void*>>;

struct Pool {
  std::mutex mu;
  FreeLists free_blocks;
  PoolStats stats;

  ~Pool() { release(); }

  void release() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [size, blocks] : free_blocks) {
      for (void* p : blocks) std::free(p);
    }
    free_blocks.clear();
    stats.cached_bytes = 0;
  }

  /// Takes a block of exactly `cap` bytes, or nullptr.
  void* take(std::size_t cap) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = free_blocks.find(cap);
    if (it == free_blocks.end() || it->second.empty()) {
      ++stats.misses;
      return nullptr;
    }
    void* data = it->second.back();
    it->second.pop_back();
    stats.cached_bytes -= cap;
    ++stats.hits;
    return data;
  }

  /// Keeps the block if under the cap; else frees it.
  void give(void* data, std::size_t cap) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stats.cached_bytes + cap <= kMaxCachedBytes) {
        free_blocks[cap].push_back(data);
        stats.cached_bytes += cap;
        return;
      }
    }
    std::free(data);
  }
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: buffers may be freed during static teardown
  return *p;
}

// Set when this thread's cache is destroyed (thread exit, or static teardown of the main
// thread): blocks freed after that go to the global pool. Trivially destructible: always safe.
thread_local bool t_buffer_cache_dead = false;

struct ThreadCache {
  FreeLists blocks;
  std::size_t bytes = 0;
  std::size_t hits = 0;

  ~ThreadCache() {
    t_buffer_cache_dead = true;
    flush();
  }
  void flush() {
    for (auto& [cap, list] : blocks) {
      for (void* p : list) pool().give(p, cap);
    }
    blocks.clear();
    bytes = 0;
  }
  void* take(std::size_t cap) {
    auto it = blocks.find(cap);
    if (it == blocks.end() || it->second.empty()) return nullptr;
    void* data = it->second.back();
    it->second.pop_back();
    bytes -= cap;
    ++hits;
    return data;
  }
  bool give(void* data, std::size_t cap) {
    if (bytes + cap > kMaxThreadCachedBytes) return false;
    blocks[cap].push_back(data);
    bytes += cap;
    return true;
  }
};

ThreadCache* thread_cache() {
  if (t_buffer_cache_dead) return nullptr;
  thread_local ThreadCache cache;
  return &cache;
}

// Recycles the shared_ptr control blocks of Buffers on a per-thread free list, so that making
// an Array costs no malloc once a program has warmed up.
// A thread's cache dies before the program's static Arrays do (thread-local objects are destroyed
// first), so blocks freed after that bypass it. The flag is trivially destructible: always safe.
thread_local bool t_block_cache_dead = false;

struct BlockCache {
  std::vector<void*> blocks;
  ~BlockCache() {
    t_block_cache_dead = true;
    for (void* p : blocks) ::operator delete(p);
  }
};

template <typename T>
struct RecyclingAllocator {
  using value_type = T;
  RecyclingAllocator() = default;
  template <typename U>
  RecyclingAllocator(const RecyclingAllocator<U>&) {}  // NOLINT: rebinding
  static std::vector<void*>& cache() {
    thread_local BlockCache c;
    return c.blocks;
  }
  T* allocate(std::size_t n) {
    if (kPoolEnabled && n == 1 && !t_block_cache_dead && !cache().empty()) {
      void* p = cache().back();
      cache().pop_back();
      return static_cast<T*>(p);
    }
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) {
    if (kPoolEnabled && n == 1 && !t_block_cache_dead && cache().size() < 4096) {
      cache().push_back(p);
      return;
    }
    ::operator delete(p);
  }
  template <typename U>
  bool operator==(const RecyclingAllocator<U>&) const {
    return true;
  }
};

std::size_t round_up(std::size_t bytes) {
  return bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

thread_local ArenaTarget* t_arena_target = nullptr;

}  // namespace

ArenaTarget* set_arena_target(ArenaTarget* t) {
  ArenaTarget* old = t_arena_target;
  t_arena_target = t;
  return old;
}

std::size_t buffer_capacity(std::size_t bytes) {
  return round_up(bytes);
}

std::shared_ptr<Buffer> Buffer::allocate(std::size_t bytes) {
  const std::size_t cap = round_up(bytes);
  if (ArenaTarget* t = t_arena_target; t != nullptr && !t->used && t->cap == cap) [[unlikely]] {
    t->used = true;
    auto slice = std::allocate_shared<Buffer>(RecyclingAllocator<Buffer>());
    slice->data = static_cast<char*>(t->arena->data) + t->offset;
    slice->bytes = cap;
    slice->parent = t->arena;
    t->given = slice;
    return slice;
  }
  void* data = nullptr;
  if (kPoolEnabled) {
    ThreadCache* local = thread_cache();
    if (local != nullptr) data = local->take(cap);
    if (data == nullptr) data = pool().take(cap);
  }
  if (data == nullptr) {
    data = std::aligned_alloc(kAlignment, cap);
    if (data == nullptr) {
      throw Error("Array: out of memory allocating " + std::to_string(cap) + " bytes");
    }
  }
  auto buffer = std::allocate_shared<Buffer>(RecyclingAllocator<Buffer>());
  buffer->data = data;
  buffer->bytes = cap;
  return buffer;
}

std::shared_ptr<Buffer> Buffer::allocate_zero_pages(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (bytes < page) {  // not worth a mapping: a pooled block, zeroed
    auto buffer = allocate(bytes);
    std::memset(buffer->data, 0, buffer->bytes);
    return buffer;
  }
  const std::size_t cap = (bytes + page - 1) / page * page;
  void* data = mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) {
    throw Error("Array: out of address space mapping " + std::to_string(cap) + " bytes");
  }
  // Small pages only: reads then map the shared zero page whatever the transparent-huge-page
  // settings (a huge-page read fault may otherwise commit 2 MiB of real memory).
  madvise(data, cap, MADV_NOHUGEPAGE);
  auto buffer = std::allocate_shared<Buffer>(RecyclingAllocator<Buffer>());
  buffer->data = data;
  buffer->bytes = cap;
  buffer->mapped = true;
  return buffer;
}

Buffer::~Buffer() {
  if (data == nullptr || parent != nullptr) return;  // a slice: the parent frees the memory
  if (mapped) {
    munmap(data, bytes);
    return;
  }
  if (kPoolEnabled) {
    ThreadCache* local = thread_cache();
    if (local == nullptr || !local->give(data, bytes)) pool().give(data, bytes);
    return;
  }
  std::free(data);
}

PoolStats pool_stats() {
  PoolStats stats;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    stats = p.stats;
  }
  if (ThreadCache* local = thread_cache()) {
    stats.cached_bytes += local->bytes;
    stats.hits += local->hits;
  }
  return stats;
}

void pool_release() {
  if (ThreadCache* local = thread_cache()) local->flush();
  pool().release();
}

}  // namespace loom::detail
