// Flax's msgpack state-dict format, the writer: the encodings Python's msgpack picks, and Flax's
// chunking of arrays over MAX_CHUNK_SIZE (format in loom/serialization.hpp).
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "loom/serialization.hpp"
#include "serialization/value.hpp"

namespace loom::serialization {
namespace detail {
std::size_t g_max_chunk_size = std::size_t{1} << 30;  // flax.serialization.MAX_CHUNK_SIZE
std::size_t set_max_chunk_size(std::size_t bytes) {
  const std::size_t old = g_max_chunk_size;
  g_max_chunk_size = bytes == 0 ? 1 : bytes;
  return old;
}

}  // namespace detail

namespace {
using detail::g_max_chunk_size;
using detail::join_path;
using detail::kChunkedKey;

// ---- encoding ------------------------------------------------------------------------------

class Writer {
 public:
  explicit Writer(Bytes& out) : out_(out) {}
  void byte(std::uint8_t b) { out_.push_back(b); }
  void be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  // Python msgpack's choice for a non-negative int.
  void uint(std::uint64_t v) {
    if (v < 0x80) {
      byte(static_cast<std::uint8_t>(v));
    } else if (v <= 0xff) {
      byte(0xcc), be(v, 1);
    } else if (v <= 0xffff) {
      byte(0xcd), be(v, 2);
    } else if (v <= 0xffffffff) {
      byte(0xce), be(v, 4);
    } else {
      byte(0xcf), be(v, 8);
    }
  }
  void header(std::uint64_t n, std::uint8_t fix, std::uint8_t tag16) {
    if (n <= 15)
      byte(static_cast<std::uint8_t>(fix | n));
    else if (n <= 0xffff)
      byte(tag16), be(n, 2);
    else
      byte(static_cast<std::uint8_t>(tag16 + 1)), be(n, 4);
  }
  void str(std::string_view s) {
    if (s.size() < 32)
      byte(static_cast<std::uint8_t>(0xa0 | s.size()));
    else if (s.size() <= 0xff)
      byte(0xd9), be(s.size(), 1);
    else if (s.size() <= 0xffff)
      byte(0xda), be(s.size(), 2);
    else
      byte(0xdb), be(s.size(), 4);
    bytes(s.data(), s.size());
  }
  void bin_header(std::uint64_t n) {
    if (n <= 0xff)
      byte(0xc4), be(n, 1);
    else if (n <= 0xffff)
      byte(0xc5), be(n, 2);
    else
      byte(0xc6), be(n, 4);
  }
  void ext_header(std::uint64_t n, std::int8_t code) {
    switch (n) {
      case 1:
        byte(0xd4);
        break;
      case 2:
        byte(0xd5);
        break;
      case 4:
        byte(0xd6);
        break;
      case 8:
        byte(0xd7);
        break;
      case 16:
        byte(0xd8);
        break;
      default:
        if (n <= 0xff)
          byte(0xc7), be(n, 1);
        else if (n <= 0xffff)
          byte(0xc8), be(n, 2);
        else
          byte(0xc9), be(n, 4);
    }
    byte(static_cast<std::uint8_t>(code));
  }
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }

  // ext 1: [shape, dtype name, raw bytes], as flax's _ndarray_to_bytes.
  void ndarray(const Array& a) {
    Bytes head;
    Writer h(head);
    h.byte(0x93);
    h.header(static_cast<std::uint64_t>(a.ndim()), 0x90, 0xdc);
    for (std::int64_t d : a.shape()) h.uint(static_cast<std::uint64_t>(d));
    h.str(dtype_name(a.dtype()));
    h.bin_header(a.nbytes());
    ext_header(head.size() + a.nbytes(), 1);
    bytes(head.data(), head.size());
    if (a.nbytes()) bytes(a.raw_data(), a.nbytes());
  }

  void leaf(const Array& a, const std::vector<std::string>& path) {
    if (!a.valid()) {
      throw Error("msgpack_serialize: at \"" + join_path(path) +
                  "\": the leaf is an empty (default-constructed) Array");
    }
    if (a.nbytes() <= g_max_chunk_size) return ndarray(a);
    // flax's _chunk: chunks of MAX_CHUNK_SIZE / itemsize elements of the flattened array.
    const std::size_t chunk = std::max<std::size_t>(1, g_max_chunk_size / itemsize(a.dtype()));
    const auto n = static_cast<std::size_t>(a.size());
    header(3, 0x80, 0xde);
    str(kChunkedKey);
    byte(0xc3);
    str("shape");
    header(static_cast<std::uint64_t>(a.ndim()), 0x80, 0xde);
    for (int i = 0; i < a.ndim(); ++i) {
      str(std::to_string(i));
      uint(static_cast<std::uint64_t>(a.shape()[i]));
    }
    str("chunks");
    header((n + chunk - 1) / chunk, 0x80, 0xde);
    const auto* base = static_cast<const std::uint8_t*>(a.raw_data());
    for (std::size_t i = 0, k = 0; i < n; i += chunk, ++k) {
      const std::size_t len = std::min(chunk, n - i);
      str(std::to_string(k));
      Bytes head;
      Writer h(head);
      h.byte(0x93);
      h.byte(0x91);
      h.uint(len);
      h.str(dtype_name(a.dtype()));
      const std::size_t nb = len * itemsize(a.dtype());
      h.bin_header(nb);
      ext_header(head.size() + nb, 1);
      bytes(head.data(), head.size());
      bytes(base + i * itemsize(a.dtype()), nb);
    }
  }

  void tree(const Tree& t, std::vector<std::string>& path) {
    if (t.is_leaf()) return leaf(t.leaf(), path);
    header(t.size(), 0x80, 0xde);
    for (const auto& [k, v] : t.dict()) {
      str(k);
      path.push_back(k);
      tree(v, path);
      path.pop_back();
    }
  }

 private:
  Bytes& out_;
};

}  // namespace

Bytes msgpack_serialize(const Tree& tree) {
  Bytes out;
  Writer w(out);
  std::vector<std::string> path;
  w.tree(tree, path);
  return out;
}

}  // namespace loom::serialization
