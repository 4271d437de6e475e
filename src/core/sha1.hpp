// Private: a small SHA-1 (FIPS 180-4), used only to derive Flax's per-module rng keys.
//
//   loom::core::detail::Sha1 h;  h.update("Dense_0");  h.update_byte(1);
//   std::array<std::uint8_t, 20> d = h.digest();
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom::core::detail {

class Sha1 {
 public:
  Sha1();
  void update(const void* data, std::size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  /// The digest; the object must not be updated afterwards.
  std::array<std::uint8_t, 20> digest();

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 5> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buf_len_ = 0;
  std::uint64_t total_bytes_ = 0;
};

/// Flax's `_fold_in_static` hash: SHA-1 of the names then the count (its minimal big-endian
/// bytes), no separators; the first 4 digest bytes read big-endian.
std::uint32_t flax_rng_hash(const std::vector<std::string>& names, std::uint64_t count);

}  // namespace loom::core::detail
