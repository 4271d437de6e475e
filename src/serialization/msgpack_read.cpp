// Flax's msgpack state-dict format, the reader: a small bounds-checked decoder (format in
// loom/serialization.hpp). Every length read from the input is checked against the bytes left
// before anything is allocated or copied, so what hostile input makes loom allocate stays linear in
// its size (and capped by kMaxValues for the tree itself).
#include <bit>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "loom/serialization.hpp"
#include "serialization/value.hpp"

static_assert(std::endian::native == std::endian::little,
              "Flax's ndarray payload is the host's (little-endian) byte order");

namespace loom::serialization {
namespace {
using detail::Value;

constexpr int kMaxDepth = 128;
// Dicts, leaves and plain numbers together. Each costs a few hundred bytes once decoded, so this
// bounds what a file of tiny values can make loom allocate (a real checkpoint has thousands).
constexpr std::size_t kMaxValues = std::size_t{1} << 18;  // ~80 MB decoded at most
using detail::join_path;
using detail::kChunkedKey;

// ---- decoding ------------------------------------------------------------------------------

class Reader {
 public:
  Reader(std::span<const std::uint8_t> bytes, const char* op, std::vector<std::string>& path,
         std::size_t base = 0)
      : begin_(bytes.data()),
        p_(bytes.data()),
        end_(bytes.data() + bytes.size()),
        op_(op),
        path_(path),
        base_(base) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(std::string(op_) + ": at \"" + join_path(path_) + "\" (byte " +
                std::to_string(base_ + static_cast<std::size_t>(p_ - begin_)) + "): " + what);
  }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  bool at_end() const { return p_ == end_; }
  std::size_t offset() const { return base_ + static_cast<std::size_t>(p_ - begin_); }

  void need(std::uint64_t n, const char* what) const {
    if (n > left()) {
      fail("truncated input: " + std::string(what) + " needs " + std::to_string(n) + " bytes, " +
           std::to_string(left()) + " left");
    }
  }
  std::span<const std::uint8_t> take(std::uint64_t n, const char* what) {
    need(n, what);
    std::span<const std::uint8_t> s(p_, static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  std::uint64_t be(int n, const char* what) {
    auto s = take(static_cast<std::uint64_t>(n), what);
    std::uint64_t v = 0;
    for (std::uint8_t b : s) v = (v << 8) | b;
    return v;
  }
  std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(be(1, what)); }

  Value value(int depth);
  // An integer in any msgpack encoding (for shapes); fails on other types.
  std::int64_t integer(const char* what);
  std::uint64_t container_size(std::uint8_t tag, bool map, std::uint64_t fix_base);

 private:
  Value map(std::uint64_t n, int depth);
  Value list(std::uint64_t n, int depth);
  Value ext(std::int8_t code, std::uint64_t len);
  std::string key();

  const std::uint8_t* begin_;
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  const char* op_;
  std::vector<std::string>& path_;
  std::size_t base_;
  std::size_t values_ = 0;
};

bool valid_utf8(std::span<const std::uint8_t> s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::uint8_t c = s[i];
    int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (n < 0 || (n == 1 && c < 0xc2) || i + static_cast<std::size_t>(n) >= s.size() + (n == 0))
      return false;
    std::uint32_t cp = n == 0 ? c : c & (0x3f >> n);
    for (int k = 1; k <= n; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += static_cast<std::size_t>(n) + 1;
  }
  return true;
}

std::string Reader::key() {
  const std::uint8_t tag = u8("a map key");
  std::uint64_t len = 0;
  if (tag >= 0xa0 && tag <= 0xbf) {
    len = tag & 0x1f;
  } else if (tag == 0xd9 || tag == 0xda || tag == 0xdb) {
    len = be(1 << (tag - 0xd9), "a key length");
  } else {
    --p_;
    fail("a map key must be a string (Tree keys are strings), found msgpack type 0x" +
         [](unsigned t) {
           const char* h = "0123456789abcdef";
           return std::string{h[t >> 4], h[t & 15]};
         }(tag));
  }
  auto s = take(len, "a map key");
  if (!valid_utf8(s)) fail("a map key is not valid UTF-8");
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

std::int64_t Reader::integer(const char* what) {
  const std::uint8_t tag = u8(what);
  if (tag <= 0x7f) return tag;
  if (tag >= 0xe0) return static_cast<std::int8_t>(tag);
  switch (tag) {
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
      const std::uint64_t v = be(1 << (tag - 0xcc), what);
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(std::string(what) + " " + std::to_string(v) + " is out of range");
      return static_cast<std::int64_t>(v);
    }
    case 0xd0:
      return static_cast<std::int8_t>(be(1, what));
    case 0xd1:
      return static_cast<std::int16_t>(be(2, what));
    case 0xd2:
      return static_cast<std::int32_t>(be(4, what));
    case 0xd3:
      return static_cast<std::int64_t>(be(8, what));
    default:
      --p_;
      fail(std::string(what) + " must be an integer");
  }
}

std::uint64_t Reader::container_size(std::uint8_t tag, bool is_map, std::uint64_t fix_base) {
  if (tag >= fix_base && tag <= fix_base + 0xf) return tag - fix_base;
  const bool small = is_map ? tag == 0xde : tag == 0xdc;
  return be(small ? 2 : 4, is_map ? "a map size" : "an array size");
}

Value Reader::value(int depth) {
  if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
  if (++values_ > kMaxValues)
    fail("more than " + std::to_string(kMaxValues) + " values (dicts, arrays and numbers)");
  const std::uint8_t tag = u8("a value");
  Value v;
  if (tag <= 0x7f || tag >= 0xe0) {
    --p_;
    v.kind = Value::Kind::integer;
    v.i = integer("an integer");
    return v;
  }
  if ((tag >= 0x80 && tag <= 0x8f) || tag == 0xde || tag == 0xdf)
    return map(container_size(tag, true, 0x80), depth);
  if ((tag >= 0x90 && tag <= 0x9f) || tag == 0xdc || tag == 0xdd)
    return list(container_size(tag, false, 0x90), depth);
  switch (tag) {
    case 0xc2:
    case 0xc3:
      v.kind = Value::Kind::boolean;
      v.b = tag == 0xc3;
      return v;
    case 0xca: {
      const auto bits = static_cast<std::uint32_t>(be(4, "a float32"));
      v.kind = Value::Kind::floating;
      v.f = std::bit_cast<float>(bits);
      return v;
    }
    case 0xcb:
      v.kind = Value::Kind::floating;
      v.f = std::bit_cast<double>(be(8, "a float64"));
      return v;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      --p_;
      v.kind = Value::Kind::integer;
      v.i = integer("an integer");
      return v;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: {
      const auto code = static_cast<std::int8_t>(u8("an ext type code"));
      return ext(code, std::uint64_t{1} << (tag - 0xd4));
    }
    case 0xc7:
    case 0xc8:
    case 0xc9: {
      const std::uint64_t len = be(1 << (tag - 0xc7), "an ext length");
      const auto code = static_cast<std::int8_t>(u8("an ext type code"));
      return ext(code, len);
    }
    case 0xc0:
      --p_;
      fail("nil (Python None) is not a loom Tree value");
    default:
      --p_;
      fail(tag == 0xc1 ? "byte 0xc1 is never used in msgpack"
           : (tag >= 0xa0 && tag <= 0xbf) || (tag >= 0xd9 && tag <= 0xdb)
               ? "a string is not a loom Tree value (leaves are arrays or numbers)"
               : "a binary blob is not a loom Tree value (leaves are arrays or numbers)");
  }
}

Value unchunk(Value chunked, const Reader& r);

Value Reader::map(std::uint64_t n, int depth) {
  // Every entry takes at least two bytes: refuse a count the input cannot hold.
  if (n > left() / 2) {
    fail("truncated input: a map of " + std::to_string(n) + " entries cannot fit in the " +
         std::to_string(left()) + " bytes left");
  }
  Value v;
  v.kind = Value::Kind::dict;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string k = key();
    if (v.dict.count(k)) fail("duplicate map key \"" + k + "\"");
    path_.push_back(k);
    Value child = value(depth + 1);
    path_.pop_back();
    v.dict.emplace(std::move(k), std::move(child));
  }
  if (v.dict.count(kChunkedKey)) return unchunk(std::move(v), *this);
  return v;
}

Value Reader::list(std::uint64_t n, int depth) {
  if (n > left()) {
    fail("truncated input: an array of " + std::to_string(n) + " entries cannot fit in the " +
         std::to_string(left()) + " bytes left");
  }
  Value v;
  v.kind = Value::Kind::dict;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string k = std::to_string(i);
    path_.push_back(k);
    Value child = value(depth + 1);
    path_.pop_back();
    v.dict.emplace(std::move(k), std::move(child));
  }
  return v;
}

bool parse_dtype(std::string_view name, DType& out) {
  static constexpr std::pair<std::string_view, DType> kNames[] = {{"float32", DType::float32},
                                                                  {"float64", DType::float64},
                                                                  {"int32", DType::int32},
                                                                  {"uint32", DType::uint32},
                                                                  {"bool", DType::bool_}};
  for (const auto& [n, d] : kNames) {
    if (n == name) {
      out = d;
      return true;
    }
  }
  return false;
}

Value Reader::ext(std::int8_t code, std::uint64_t len) {
  const std::size_t start = offset();
  auto payload = take(len, "an ext payload");
  if (code == 2) fail("a Python complex (ext type 2) has no loom dtype");
  if (code != 1 && code != 3) {
    fail("unknown ext type " + std::to_string(code) +
         " (Flax writes 1 for ndarray, 2 complex, 3 numpy scalar)");
  }
  Reader in(payload, op_, path_, start);
  const std::uint8_t tag = in.u8("an ndarray header");
  if (!((tag >= 0x90 && tag <= 0x9f) || tag == 0xdc || tag == 0xdd)) {
    in.fail("an ndarray payload must be the array [shape, dtype, bytes]");
  }
  if (in.container_size(tag, false, 0x90) != 3)
    in.fail("an ndarray payload must have 3 entries [shape, dtype, bytes]");
  const std::uint8_t stag = in.u8("an ndarray shape");
  if (!((stag >= 0x90 && stag <= 0x9f) || stag == 0xdc || stag == 0xdd))
    in.fail("an ndarray shape must be an array of integers");
  const std::uint64_t rank = in.container_size(stag, false, 0x90);
  if (rank > static_cast<std::uint64_t>(Shape::kMaxRank)) {
    in.fail("an ndarray of rank " + std::to_string(rank) + " exceeds loom's maximum rank " +
            std::to_string(Shape::kMaxRank));
  }
  Shape shape;
  std::uint64_t numel = 1;
  for (std::uint64_t i = 0; i < rank; ++i) {
    const std::int64_t d = in.integer("an ndarray dimension");
    if (d < 0) in.fail("an ndarray dimension is negative (" + std::to_string(d) + ")");
    shape.push_back(d);
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel))
      in.fail("the ndarray shape " + shape.str() + " overflows");
  }
  // dtype name and buffer: str or bin (Flax unpacks them with raw=True).
  auto raw = [&](const char* what) {
    const std::uint8_t t = in.u8(what);
    std::uint64_t n = 0;
    if (t >= 0xa0 && t <= 0xbf)
      n = t & 0x1f;
    else if (t >= 0xd9 && t <= 0xdb)
      n = in.be(1 << (t - 0xd9), what);
    else if (t >= 0xc4 && t <= 0xc6)
      n = in.be(1 << (t - 0xc4), what);
    else
      in.fail(std::string(what) + " must be a string or binary");
    return in.take(n, what);
  };
  auto name_bytes = raw("an ndarray dtype name");
  const std::string name(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
  DType dtype{};
  if (!parse_dtype(name, dtype)) {
    in.fail("dtype \"" + name.substr(0, 32) +
            "\" is not a loom dtype (float32, float64, int32, uint32, bool)");
  }
  auto data = raw("an ndarray buffer");
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(itemsize(dtype)), &nbytes))
    in.fail("the ndarray shape " + shape.str() + " overflows");
  if (nbytes != data.size()) {
    in.fail("an ndarray " + name + shape.str() + " needs " + std::to_string(nbytes) +
            " bytes, the buffer has " + std::to_string(data.size()));
  }
  if (!in.at_end()) in.fail("extra bytes after the ndarray payload");
  Value v;
  v.kind = Value::Kind::array;
  v.array = Array::empty(shape, dtype);
  if (dtype == DType::bool_) {
    auto* out = static_cast<std::uint8_t*>(v.array.raw_mutable_data());
    for (std::size_t i = 0; i < data.size(); ++i) out[i] = data[i] != 0;  // bool is 0 or 1
  } else if (!data.empty()) {
    std::memcpy(v.array.raw_mutable_data(), data.data(), data.size());
  }
  return v;
}

// The inverse of Flax's _chunk: {"__msgpack_chunked_array__", "shape": {"0": d0, ...},
// "chunks": {"0": 1-d array, ...}} -> one array.
Value unchunk(Value chunked, const Reader& r) {
  auto tuple = [&](const char* key) -> const Value& {
    auto it = chunked.dict.find(key);
    if (it == chunked.dict.end() || it->second.kind != Value::Kind::dict)
      r.fail(std::string("a chunked array lacks its \"") + key + "\" dict");
    const Value& t = it->second;
    for (std::size_t i = 0; i < t.dict.size(); ++i) {
      if (!t.dict.count(std::to_string(i)))
        r.fail(std::string("a chunked array's \"") + key + "\" lacks entry " + std::to_string(i));
    }
    return t;
  };
  const Value& shape_t = tuple("shape");
  const Value& chunks_t = tuple("chunks");
  if (shape_t.dict.size() > static_cast<std::size_t>(Shape::kMaxRank))
    r.fail("a chunked array's rank exceeds loom's maximum rank");
  Shape shape;
  std::uint64_t numel = 1;
  for (std::size_t i = 0; i < shape_t.dict.size(); ++i) {
    const Value& d = shape_t.dict.at(std::to_string(i));
    if (d.kind != Value::Kind::integer || d.i < 0)
      r.fail("a chunked array's shape must hold non-negative integers");
    shape.push_back(d.i);
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d.i), &numel))
      r.fail("a chunked array's shape overflows");
  }
  if (chunks_t.dict.empty()) r.fail("a chunked array has no chunks");
  const DType dtype = chunks_t.dict.at("0").array.dtype();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < chunks_t.dict.size(); ++i) {
    const Value& c = chunks_t.dict.at(std::to_string(i));
    if (c.kind != Value::Kind::array || c.array.ndim() != 1 || c.array.dtype() != dtype)
      r.fail("chunk " + std::to_string(i) + " of a chunked array is not a 1-d " +
             dtype_name(dtype) + " array");
    total += static_cast<std::uint64_t>(c.array.size());
  }
  if (total != numel) {
    r.fail("a chunked array of shape " + shape.str() + " has " + std::to_string(total) +
           " elements in its chunks");
  }
  Value v;
  v.kind = Value::Kind::array;
  v.array = Array::empty(shape, dtype);
  auto* out = static_cast<std::uint8_t*>(v.array.raw_mutable_data());
  for (std::size_t i = 0; i < chunks_t.dict.size(); ++i) {
    const Array& c = chunks_t.dict.at(std::to_string(i)).array;
    if (c.nbytes()) std::memcpy(out, c.raw_data(), c.nbytes());
    out += c.nbytes();
  }
  return v;
}

}  // namespace

namespace detail {
Value decode(std::span<const std::uint8_t> bytes, const char* op) {
  std::vector<std::string> path;
  Reader r(bytes, op, path);
  if (bytes.empty()) r.fail("empty input");
  Value v = r.value(0);
  if (!r.at_end())
    r.fail(std::to_string(r.left()) + " bytes of extra data after the top-level value");
  return v;
}
}  // namespace detail

}  // namespace loom::serialization
