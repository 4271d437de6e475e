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

struct Pool {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;
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
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: buffers may be freed during static teardown
  return *p;
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

}  // namespace

std::shared_ptr<Buffer> Buffer::allocate(std::size_t bytes) {
  const std::size_t cap = round_up(bytes);
  void* data = nullptr;
  if (kPoolEnabled) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.free_blocks.find(cap);
    if (it != p.free_blocks.end() && !it->second.empty()) {
      data = it->second.back();
      it->second.pop_back();
      p.stats.cached_bytes -= cap;
      ++p.stats.hits;
    } else {
      ++p.stats.misses;
    }
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
  if (data == nullptr) return;
  if (mapped) {
    munmap(data, bytes);
    return;
  }
  if (kPoolEnabled) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.stats.cached_bytes + bytes <= kMaxCachedBytes) {
      p.free_blocks[bytes].push_back(data);
      p.stats.cached_bytes += bytes;
      return;
    }
  }
  std::free(data);
}

PoolStats pool_stats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.stats;
}

void pool_release() {
  pool().release();
}

}  // namespace loom::detail
