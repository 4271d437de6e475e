// loom::random: keys, split/fold_in and random bits in JAX's two threefry layouts; the samplers
// are in continuous.cpp, discrete.cpp and permutation.cpp. Facts (not code) from
// jax/_src/random/{core,prng,threefry2x32}.py.
#include "loom/random.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "detail/dispatch.hpp"
#include "random/kernels.hpp"
#include "random/random_internal.hpp"

namespace loom::random {

// ---- mode
// ----------------------------------------------------------------------------------------

namespace {
std::atomic<ThreefryMode> g_default_mode{ThreefryMode::partitionable};
thread_local std::optional<ThreefryMode> t_scoped_mode;
}  // namespace

ThreefryMode default_mode() {
  return g_default_mode.load(std::memory_order_relaxed);
}
void set_default_mode(ThreefryMode mode) {
  g_default_mode.store(mode, std::memory_order_relaxed);
}
ThreefryMode current_mode() {
  return t_scoped_mode ? *t_scoped_mode : default_mode();
}

ModeGuard::ModeGuard(ThreefryMode mode) : previous_(t_scoped_mode) {
  t_scoped_mode = mode;
}
ModeGuard::~ModeGuard() {
  t_scoped_mode = previous_;
}

// ---- keys
// ----------------------------------------------------------------------------------------

Key::Key(Array raw) : data_(std::move(raw)) {
  if (!data_.valid()) throw Error("random.Key: the key data array is empty (default-constructed)");
  if (data_.dtype() != DType::uint32 || data_.ndim() < 1 || data_.shape()[data_.ndim() - 1] != 2) {
    throw Error("random.Key: expected uint32 key data of shape (..., 2), got " +
                std::string(dtype_name(data_.dtype())) + " of shape " + data_.shape().str());
  }
  data_ = data_.detached();
}

Shape Key::shape() const {
  Shape s;
  for (int i = 0; i + 1 < data_.ndim(); ++i) s.push_back(data_.shape()[i]);
  return s;
}

Key Key::operator[](std::int64_t i) const {
  if (!valid()) throw Error("random.Key[]: the key is empty (default-constructed)");
  const Shape batch = shape();
  if (batch.empty()) throw Error("random.Key[]: a single key (batch shape ()) cannot be indexed");
  const std::int64_t n = batch[0];
  const std::int64_t j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) {
    throw Error("random.Key[]: index " + std::to_string(i) + " is out of range for " +
                std::to_string(n) + " keys (batch shape " + batch.str() + ")");
  }
  Shape out_shape;
  for (int d = 1; d < data_.ndim(); ++d) out_shape.push_back(data_.shape()[d]);
  Array out = Array::empty(out_shape, DType::uint32);
  const std::int64_t stride = out_shape.numel();
  std::memcpy(out.mutable_data<std::uint32_t>(), data_.data<std::uint32_t>() + j * stride,
              static_cast<std::size_t>(stride) * sizeof(std::uint32_t));
  static constexpr loom::detail::Primitive kKeyIndex{.name = "random_key_index"};
  detail::bind_random(kKeyIndex, out, {&data_},
                      [i](const std::vector<Array>& in) { return Key(in[0])[i].data(); });
  return Key(out);
}

std::pair<std::uint32_t, std::uint32_t> Key::words() const {
  if (!valid()) throw Error("random.Key.words: the key is empty (default-constructed)");
  if (data_.ndim() != 1) {
    throw Error("random.Key.words: expected a single key, got a batch of shape " + shape().str());
  }
  const std::uint32_t* d = data_.data<std::uint32_t>();
  return {d[0], d[1]};
}

bool operator==(const Key& a, const Key& b) {
  if (!a.valid() || !b.valid()) return a.valid() == b.valid();
  if (a.data().shape() != b.data().shape()) return false;
  return std::memcmp(a.data().raw_data(), b.data().raw_data(), a.data().nbytes()) == 0;
}

namespace detail {

Array make_key_data(std::uint32_t k0, std::uint32_t k1) {
  Array out = Array::empty(Shape{2}, DType::uint32);
  std::uint32_t* d = out.mutable_data<std::uint32_t>();
  d[0] = k0;
  d[1] = k1;
  return out;
}

std::pair<std::uint32_t, std::uint32_t> single_key(const Key& key, const char* op) {
  if (!key.valid()) {
    throw Error(std::string("random.") + op + ": the key is empty (default-constructed)");
  }
  if (key.data().ndim() != 1) {
    throw Error(std::string("random.") + op +
                ": expected a single key, got a key array of batch shape " + key.shape().str() +
                " (index it, e.g. keys[0], as JAX asks for vmap)");
  }
  const std::uint32_t* d = key.data().data<std::uint32_t>();
  return {d[0], d[1]};
}

namespace {
// Elements per work item: large enough to amortize a task, small enough to stay in L1.
constexpr std::int64_t kChunk = 4096;
}  // namespace

void bits32(std::uint32_t k0, std::uint32_t k1, std::int64_t n, std::uint32_t* out,
            ThreefryMode mode) {
  if (n <= 0) return;
  const KernelTable& k = kernels();
  if (mode == ThreefryMode::partitionable) {
    loom::detail::parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      k.bits32_partitionable(k0, k1, static_cast<std::uint64_t>(b), e - b, out + b);
    });
    return;
  }
  if (n > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()) - 1) {
    throw Error(
        "random.bits: the original threefry layout is limited to 2^32 - 2 words per call, "
        "got " +
        std::to_string(n) + " (use ThreefryMode::partitionable)");
  }
  // threefry_2x32(key, iota(n)): pad odd n with one zero, hash element j against j + half.
  const std::int64_t half = (n + 1) / 2;
  const std::int64_t full = n / 2;  // pairs whose partner is a real counter
  std::uint32_t* out1 = out + half;
  loom::detail::parallel_for(full, [&](std::int64_t b, std::int64_t e) {
    k.pairs_original(k0, k1, static_cast<std::uint32_t>(half), b, e, out + b, out1 + b);
  });
  if (n % 2 == 1) {
    // The last pair hashes (half - 1, 0): the padding zero, whose output is dropped.
    std::uint32_t a = static_cast<std::uint32_t>(half - 1), c = 0, y0, y1;
    k.hash_pairs(k0, k1, &a, &c, &y0, &y1, 1);
    out[half - 1] = y0;
  }
}

void bits64(std::uint32_t k0, std::uint32_t k1, std::int64_t n, std::uint64_t* out,
            ThreefryMode mode) {
  if (n <= 0) return;
  const KernelTable& k = kernels();
  if (mode == ThreefryMode::partitionable) {
    loom::detail::parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      k.bits64_partitionable(k0, k1, static_cast<std::uint64_t>(b), e - b, out + b);
    });
    return;
  }
  // 2n words from threefry_2x32(key, iota(2n)); element j = (word j << 32) | word (n + j), and
  // words j and n + j are the two outputs of the block (j, n + j).
  if (2 * n > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()) - 1) {
    throw Error(
        "random.bits: the original threefry layout is limited to 2^31 - 1 64-bit values "
        "per call, got " +
        std::to_string(n));
  }
  loom::detail::parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    std::uint32_t hi[kChunk], lo[kChunk];
    for (std::int64_t c = b; c < e; c += kChunk) {
      const std::int64_t m = std::min(kChunk, e - c);
      k.pairs_original(k0, k1, static_cast<std::uint32_t>(n), c, c + m, hi, lo);
      for (std::int64_t j = 0; j < m; ++j) out[c + j] = (std::uint64_t{hi[j]} << 32) | lo[j];
    }
  });
}

void for_bits32_chunks(
    std::uint32_t k0, std::uint32_t k1, std::int64_t n, ThreefryMode mode,
    const std::function<void(const std::uint32_t*, std::int64_t, std::int64_t)>& body) {
  if (n <= 0) return;
  if (mode == ThreefryMode::partitionable) {
    const KernelTable& k = kernels();
    loom::detail::parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      alignas(64) std::uint32_t buf[kChunk];
      for (std::int64_t c = b; c < e; c += kChunk) {
        const std::int64_t m = std::min(kChunk, e - c);
        k.bits32_partitionable(k0, k1, static_cast<std::uint64_t>(c), m, buf);
        body(buf, c, m);
      }
    });
    return;
  }
  std::vector<std::uint32_t> all(static_cast<std::size_t>(n));
  bits32(k0, k1, n, all.data(), mode);
  loom::detail::parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t c = b; c < e; c += kChunk) {
      body(all.data() + c, c, std::min(kChunk, e - c));
    }
  });
}

std::vector<std::pair<std::uint32_t, std::uint32_t>> split_words(std::uint32_t k0, std::uint32_t k1,
                                                                 std::int64_t num,
                                                                 ThreefryMode mode) {
  if (num > (std::int64_t{1} << 40)) {
    throw Error("random.split: num " + std::to_string(num) + " is too large (at most 2^40 keys)");
  }
  std::vector<std::uint32_t> flat(static_cast<std::size_t>(2 * num));
  if (num > 0) {
    if (mode == ThreefryMode::partitionable) {
      kernels().keys_partitionable(k0, k1, 0, num, flat.data());
    } else {
      // threefry_2x32(key, iota(2 num)) reshaped (num, 2).
      bits32(k0, k1, 2 * num, flat.data(), ThreefryMode::original);
    }
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> out(static_cast<std::size_t>(num));
  for (std::int64_t i = 0; i < num; ++i) {
    out[static_cast<std::size_t>(i)] = {flat[static_cast<std::size_t>(2 * i)],
                                        flat[static_cast<std::size_t>(2 * i + 1)]};
  }
  return out;
}

std::pair<std::uint32_t, std::uint32_t> fold_in_words(std::uint32_t k0, std::uint32_t k1,
                                                      std::uint32_t data) {
  std::uint32_t a = 0, b = data, y0, y1;
  kernels().hash_pairs(k0, k1, &a, &b, &y0, &y1, 1);
  return {y0, y1};
}

int canonical_axis(int axis, int ndim, const char* op, const Shape& shape) {
  const int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) {
    throw Error(op_name(op) + ": axis " + std::to_string(axis) + " is out of bounds for shape " +
                shape.str());
  }
  return a;
}

void check_shape(const Shape& shape, const char* op) {
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      throw Error(std::string("random.") + op + ": shape " + shape.str() +
                  " has a negative dimension");
    }
  }
  // The samplers stage 8-byte words per element; refuse sizes no allocation could hold with a
  // loom::Error rather than std::length_error / std::bad_alloc.
  if (shape.numel() > (std::int64_t{1} << 40)) {
    throw Error(std::string("random.") + op + ": shape " + shape.str() + " is too large");
  }
}

}  // namespace detail

Key key(std::int64_t seed) {
  return key(seed, SeedMode::x32);
}
Key key(std::int64_t seed, SeedMode seed_mode) {
  return Key(PRNGKey(seed, seed_mode));
}
Array PRNGKey(std::int64_t seed) {
  return PRNGKey(seed, SeedMode::x32);
}
Array PRNGKey(std::int64_t seed, SeedMode seed_mode) {
  const auto u = static_cast<std::uint64_t>(seed);
  // With 64-bit ints off JAX first converts the seed to int32 (keeping seed mod 2^32), and the
  // high word (seed >> 32 of an int32) is 0.
  const std::uint32_t hi = seed_mode == SeedMode::x64 ? static_cast<std::uint32_t>(u >> 32) : 0u;
  return detail::make_key_data(hi, static_cast<std::uint32_t>(u));
}
Array key_data(const Key& key) {
  if (!key.valid()) throw Error("random.key_data: the key is empty (default-constructed)");
  return key.data();
}
Key wrap_key_data(const Array& data) {
  if (!data.valid()) throw Error("random.wrap_key_data: the key data array is empty");
  return Key(data);
}

Key split(const Key& key, std::int64_t num) {
  if (num < 0) {
    throw Error("random.split: num must be non-negative, got " + std::to_string(num));
  }
  return split(key, Shape{num});
}

Key split(const Key& key, const Shape& shape) {
  const auto [k0, k1] = detail::single_key(key, "split");
  detail::check_shape(shape, "split");
  const std::int64_t num = shape.numel();
  const auto words = detail::split_words(k0, k1, num, current_mode());
  Shape out_shape = shape;
  out_shape.push_back(2);
  Array out = Array::empty(out_shape, DType::uint32);
  std::uint32_t* d = out.mutable_data<std::uint32_t>();
  for (std::int64_t i = 0; i < num; ++i) {
    d[2 * i] = words[static_cast<std::size_t>(i)].first;
    d[2 * i + 1] = words[static_cast<std::size_t>(i)].second;
  }
  static constexpr loom::detail::Primitive kSplit{.name = "random_split"};
  detail::bind_random(kSplit, out, {&key.data()}, [shape](const std::vector<Array>& in) {
    return split(Key(in[0]), shape).data();
  });
  return Key(out);
}

std::pair<Key, Key> split2(const Key& key) {
  const auto [k0, k1] = detail::single_key(key, "split");
  const auto w = detail::split_words(k0, k1, 2, current_mode());
  Array a = detail::make_key_data(w[0].first, w[0].second);
  Array b = detail::make_key_data(w[1].first, w[1].second);
  static constexpr loom::detail::Primitive kSplit{.name = "random_split"};
  detail::bind_random(kSplit, a, {&key.data()},
                      [](const std::vector<Array>& in) { return split2(Key(in[0])).first.data(); });
  detail::bind_random(kSplit, b, {&key.data()}, [](const std::vector<Array>& in) {
    return split2(Key(in[0])).second.data();
  });
  return {Key(a), Key(b)};
}

Key fold_in(const Key& key, std::uint32_t data) {
  const auto [k0, k1] = detail::single_key(key, "fold_in");
  const auto [y0, y1] = detail::fold_in_words(k0, k1, data);
  Array out = detail::make_key_data(y0, y1);
  static constexpr loom::detail::Primitive kFoldIn{.name = "random_fold_in"};
  detail::bind_random(kFoldIn, out, {&key.data()}, [data](const std::vector<Array>& in) {
    return fold_in(Key(in[0]), data).data();
  });
  return Key(out);
}

std::pair<std::uint32_t, std::uint32_t> threefry2x32(std::uint32_t k0, std::uint32_t k1,
                                                     std::uint32_t x0, std::uint32_t x1) {
  std::uint32_t y0, y1;
  detail::kernels().hash_pairs(k0, k1, &x0, &x1, &y0, &y1, 1);
  return {y0, y1};
}

Array threefry_2x32(const Key& key, const Array& count) {
  const auto [k0, k1] = detail::single_key(key, "threefry_2x32");
  if (!count.valid() || count.dtype() != DType::uint32) {
    throw Error("random.threefry_2x32: expected a uint32 count array, got " +
                (count.valid() ? std::string(dtype_name(count.dtype())) : std::string("<empty>")));
  }
  const std::int64_t n = count.size();
  Array out = Array::empty(count.shape(), DType::uint32);
  if (n == 0) return out;
  const std::int64_t half = (n + 1) / 2;
  std::vector<std::uint32_t> x0(static_cast<std::size_t>(half)),
      x1(static_cast<std::size_t>(half), 0u);
  const std::uint32_t* c = count.data<std::uint32_t>();
  std::copy(c, c + half, x0.begin());
  std::copy(c + half, c + n, x1.begin());
  std::vector<std::uint32_t> y0(static_cast<std::size_t>(half)), y1(static_cast<std::size_t>(half));
  detail::kernels().hash_pairs(k0, k1, x0.data(), x1.data(), y0.data(), y1.data(), half);
  std::uint32_t* o = out.mutable_data<std::uint32_t>();
  std::copy(y0.begin(), y0.end(), o);
  std::copy(y1.begin(), y1.begin() + (n - half), o + half);
  static constexpr loom::detail::Primitive kThreefry{.name = "threefry2x32"};
  detail::bind_random(kThreefry, out, {&key.data(), &count}, [](const std::vector<Array>& in) {
    return threefry_2x32(Key(in[0]), in[1]);
  });
  return out;
}

std::vector<std::uint64_t> bits64(const Key& key, Shape shape) {
  const auto [k0, k1] = detail::single_key(key, "bits");
  detail::check_shape(shape, "bits");
  std::vector<std::uint64_t> out(static_cast<std::size_t>(shape.numel()));
  detail::bits64(k0, k1, shape.numel(), out.data(), current_mode());
  return out;
}

namespace {
Array bits_kernel(const Key& key, const Shape& shape, int bit_width) {
  const auto [k0, k1] = detail::single_key(key, "bits");
  detail::check_shape(shape, "bits");
  if (bit_width != 8 && bit_width != 16 && bit_width != 32 && bit_width != 64) {
    throw Error("random.bits: bit_width must be 8, 16, 32 or 64, got " + std::to_string(bit_width));
  }
  const std::int64_t n = shape.numel();
  const ThreefryMode mode = current_mode();
  if (bit_width == 64) {
    std::vector<std::uint64_t> v(static_cast<std::size_t>(n));
    detail::bits64(k0, k1, n, v.data(), mode);
    Shape out_shape = shape;
    out_shape.push_back(2);
    Array out = Array::empty(out_shape, DType::uint32);
    std::uint32_t* d = out.mutable_data<std::uint32_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      d[2 * i] = static_cast<std::uint32_t>(v[static_cast<std::size_t>(i)] >> 32);
      d[2 * i + 1] = static_cast<std::uint32_t>(v[static_cast<std::size_t>(i)]);
    }
    return out;
  }
  Array out = Array::empty(shape, DType::uint32);
  std::uint32_t* d = out.mutable_data<std::uint32_t>();
  if (bit_width == 32 || mode == ThreefryMode::partitionable) {
    detail::bits32(k0, k1, n, d, mode);
    if (bit_width < 32) {  // JAX converts y0 ^ y1 to uint8/16: the low bits.
      const std::uint32_t mask = (1u << bit_width) - 1u;
      for (std::int64_t i = 0; i < n; ++i) d[i] &= mask;
    }
    return out;
  }
  // Original layout, 8/16 bits: ceil(bw * n / 32) words, viewed as little-endian uint8/uint16.
  const int per_word = 32 / bit_width;
  const std::int64_t words = (n * bit_width + 31) / 32;
  std::vector<std::uint32_t> w(static_cast<std::size_t>(words));
  detail::bits32(k0, k1, words, w.data(), mode);
  const std::uint32_t mask = (1u << bit_width) - 1u;
  for (std::int64_t i = 0; i < n; ++i) {
    d[i] = (w[static_cast<std::size_t>(i / per_word)] >> (bit_width * (i % per_word))) & mask;
  }
  return out;
}

}  // namespace

Array bits(const Key& key, Shape shape, int bit_width) {
  Array out = bits_kernel(key, shape, bit_width);
  static constexpr loom::detail::Primitive kBits{.name = "random_bits"};
  detail::bind_random(kBits, out, {&key.data()}, [shape, bit_width](const std::vector<Array>& in) {
    return bits(Key(in[0]), shape, bit_width);
  });
  return out;
}

Array random_bits(const Key& key, int bit_width, Shape shape) {
  return bits(key, shape, bit_width);
}

}  // namespace loom::random
