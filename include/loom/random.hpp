// loom::random: JAX's counter-based threefry2x32 PRNG, bit for bit.
//
//   namespace rnd = loom::random;
//   rnd::Key k = rnd::key(0);                       // jax.random.key(0)
//   auto [k1, k2] = rnd::split2(k);                 // k1, k2 = jax.random.split(k)
//   loom::Array x = rnd::normal(k1, {3, 4});        // same float32 bits as jax.random.normal
//   loom::Array i = rnd::randint(k2, {5}, 0, 10);   // int32 in [0, 10)
//
// Randomness is explicit: every sampler takes a key and is a pure function of it. A key is never
// consumed implicitly; derive fresh keys with split or fold_in.
//
// Two hash layouts ("modes") exist, as in JAX (`jax_threefry_partitionable`):
//   - ThreefryMode::partitionable (loom's default, JAX's default since 0.5): element i of
//     random_bits and key i of split hash the 64-bit counter i; split(k, n)[i] == fold_in(k, i).
//   - ThreefryMode::original (JAX before 0.5): the counters 0..n-1 are hashed pairwise, first half
//     against second half. JAX's published test vectors and older checkpoints use it.
// Only split and random bits (so every sampler) differ between the modes; fold_in does not.
// Select the mode globally (set_default_mode), for a scope (ModeGuard), or per call by wrapping
// the call in a ModeGuard:
//   { rnd::ModeGuard g(rnd::ThreefryMode::original); auto u = rnd::uniform(k, {3}); }
//
// Exactness: float32 outputs of bits, uniform, normal, truncated_normal, bernoulli, randint,
// gumbel, categorical, permutation and choice equal JAX's on CPU bit for bit (same integer
// hashing, same mantissa construction, the same erfinv/erf/log1p/log approximations as XLA:CPU,
// with the same fused multiply-adds). float64 samplers follow JAX's construction too.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/dtype.hpp"

namespace loom::random {

/// Which counter layout threefry uses for split and random bits (see the file comment).
enum class ThreefryMode : std::uint8_t { partitionable, original };

/// The process-wide default mode (initially partitionable).
///   bool original = loom::random::default_mode() == loom::random::ThreefryMode::original;
ThreefryMode default_mode();
/// Sets the process-wide default mode for every thread (a ModeGuard in scope still wins);
/// JAX's jax.config.update("jax_threefry_partitionable", ...).
///   loom::random::set_default_mode(loom::random::ThreefryMode::original);
void set_default_mode(ThreefryMode mode);
/// The mode in effect on this thread: the innermost ModeGuard, else the default.
///   loom::random::ThreefryMode m = loom::random::current_mode();
ThreefryMode current_mode();

/// Sets the mode on this thread for the guard's lifetime (nestable, restores on destruction).
///   { loom::random::ModeGuard g(loom::random::ThreefryMode::original); ... }
class ModeGuard {
 public:
  explicit ModeGuard(ThreefryMode mode);
  ~ModeGuard();
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  std::optional<ThreefryMode> previous_;
};

/// How a seed becomes the two key words: JAX's default (64-bit ints off) keeps seed mod 2^32
/// in the low word; with x64 on, JAX splits the 64-bit seed into (high, low) words.
enum class SeedMode : std::uint8_t { x32, x64 };

/// A typed key (jax.random.key): uint32 data of shape (batch..., 2).
///   loom::random::Key k = loom::random::key(42);
///   loom::random::Key ks = loom::random::split(k, 4);  // ks.shape() == (4,)
///   loom::random::Key k2 = ks[2];
class Key {
 public:
  Key() = default;
  /// Wraps raw uint32 key data of shape (..., 2), so PRNGKey arrays work wherever a Key does.
  /// Other dtypes or shapes are a loom::Error.
  Key(Array raw);  // NOLINT(google-explicit-constructor): implicit on purpose, as in JAX.

  const Array& data() const { return data_; }
  bool valid() const { return data_.valid(); }
  /// The batch shape: data shape without the trailing 2 (() for a single key).
  Shape shape() const;
  /// The number of keys in the batch (1 for a single key).
  std::int64_t size() const { return shape().numel(); }
  /// The i-th key along the first batch axis (negative i counts from the end).
  Key operator[](std::int64_t i) const;
  /// The two words of a single key.
  std::pair<std::uint32_t, std::uint32_t> words() const;

  friend bool operator==(const Key& a, const Key& b);
  friend bool operator!=(const Key& a, const Key& b) { return !(a == b); }

 private:
  Array data_;
};

/// jax.random.key(seed): a single typed key, seeded as JAX does by default (SeedMode::x32).
///   loom::random::Key k = loom::random::key(0);   // key(-1).words() == {0, 4294967295}
Key key(std::int64_t seed);
/// jax.random.key(seed) with the seed mode given: SeedMode::x64 keeps the seed's high 32 bits
/// in the first word (JAX with jax_enable_x64); SeedMode::x32 is key(seed).
///   auto k = loom::random::key(-1, loom::random::SeedMode::x64);   // words {2^32 - 1, 2^32 - 1}
Key key(std::int64_t seed, SeedMode seed_mode);
/// jax.random.PRNGKey(seed): raw uint32[2] key data (a Key converts from it implicitly).
///   loom::Array raw = loom::random::PRNGKey(0);   // uint32 [0, 0]
Array PRNGKey(std::int64_t seed);
/// jax.random.PRNGKey(seed) with the seed mode given (see key(seed, SeedMode)).
///   loom::Array raw = loom::random::PRNGKey(1LL << 32, loom::random::SeedMode::x64);   // [1, 0]
Array PRNGKey(std::int64_t seed, SeedMode seed_mode);
/// jax.random.key_data: the raw uint32 data of a key (shape (batch..., 2)). An empty
/// (default-constructed) key is a loom::Error.
///   loom::Array raw = loom::random::key_data(loom::random::key(0));   // uint32 [0, 0]
Array key_data(const Key& key);
/// jax.random.wrap_key_data: a typed key from raw uint32 data of shape (..., 2); other dtypes
/// or shapes are a loom::Error.
///   loom::random::Key k = loom::random::wrap_key_data(loom::random::PRNGKey(0));
Key wrap_key_data(const Array& data);

/// jax.random.split: `num` (default 2) new keys (batch shape (num,)) from a single key.
/// A batch of keys or a negative num is a loom::Error.
///   loom::random::Key ks = loom::random::split(loom::random::key(0), 3);   // ks[0] .. ks[2]
Key split(const Key& key, std::int64_t num = 2);
/// jax.random.split with a batch shape: split(k, {2, 3}) has batch shape (2, 3).
///   loom::random::Key ks = loom::random::split(k, loom::Shape{2, 3});   // ks.shape() == (2, 3)
Key split(const Key& key, const Shape& shape);
/// k1, k2 = jax.random.split(k): the two keys of split(k, 2), unpacked.
///   auto [k1, k2] = loom::random::split2(loom::random::key(0));
std::pair<Key, Key> split2(const Key& key);
/// jax.random.fold_in: a new key mixing in `data` (the same in both modes). Needs a single key.
///   loom::random::Key step_key = loom::random::fold_in(loom::random::key(0), 7);
Key fold_in(const Key& key, std::uint32_t data);

/// The raw threefry2x32 block hash of one counter pair (x0, x1) under key words (k0, k1).
///   auto [y0, y1] = loom::random::threefry2x32(0, 0, 0, 0);   // {0x6b200159, 0x99ba4efe}
std::pair<std::uint32_t, std::uint32_t> threefry2x32(std::uint32_t k0, std::uint32_t k1,
                                                     std::uint32_t x0, std::uint32_t x1);
/// jax.random.threefry_2x32 / prng.threefry_2x32 on a uint32 count array (any size; an odd
/// size is padded with one zero as JAX does). Returns uint32 of count's shape. The first half
/// of count is hashed against the second half, in both modes; other dtypes are a loom::Error.
///   auto y = loom::random::threefry_2x32(loom::random::key(0), loom::Array({0u, 1u, 2u, 3u}));
Array threefry_2x32(const Key& key, const Array& count);

/// jax.random.bits / random_bits. bit_width 8, 16 or 32 give uint32 arrays holding the 8/16/32-
/// bit values JAX returns as uint8/uint16/uint32 (loom has no narrower unsigned dtype).
/// bit_width 64 gives uint32 of shape (shape..., 2): the high and low words of each uint64.
///   auto b = loom::random::bits(loom::random::key(0), {4});
Array bits(const Key& key, Shape shape = {}, int bit_width = 32);
/// prng.random_bits(key, bit_width, shape): bits(key, shape, bit_width) in JAX's internal
/// argument order. bit_width other than 8, 16, 32 or 64 is a loom::Error.
///   auto b = loom::random::random_bits(loom::random::key(0), 32, {4});   // == bits(k, {4}, 32)
Array random_bits(const Key& key, int bit_width, Shape shape);
/// 64-bit random bits as uint64 values (JAX's bits(key, shape, jnp.uint64)): shape.numel()
/// values in row-major order.
///   std::vector<std::uint64_t> b = loom::random::bits64(loom::random::key(0), {3});
std::vector<std::uint64_t> bits64(const Key& key, Shape shape);

/// jax.random.uniform in [minval, maxval); dtype float32 or float64.
///   auto u = loom::random::uniform(k, {2, 3}, loom::DType::float32, -1.0, 1.0);
Array uniform(const Key& key, Shape shape = {}, DType dtype = DType::float32, double minval = 0.0,
              double maxval = 1.0);
/// jax.random.normal: standard normal samples; dtype float32 (default) or float64.
///   auto z = loom::random::normal(loom::random::key(0), {2, 3});
Array normal(const Key& key, Shape shape = {}, DType dtype = DType::float32);
/// jax.random.truncated_normal: standard normal truncated to (lower, upper); samples lie strictly
/// inside the bounds. dtype float32 (default) or float64; a NaN bound is a loom::Error.
///   auto t = loom::random::truncated_normal(loom::random::key(0), -2.0, 2.0, {3});
Array truncated_normal(const Key& key, double lower, double upper, Shape shape = {},
                       DType dtype = DType::float32);
/// jax.random.bernoulli: bool array, true with probability p (default 0.5). p outside [0, 1] is
/// a loom::Error. The shape defaults to () (p's shape); the uniforms are float32, as JAX draws
/// them for a Python float p.
///   auto mask = loom::random::bernoulli(loom::random::key(0), 0.9, loom::Shape{4, 4});
Array bernoulli(const Key& key, double p = 0.5, std::optional<Shape> shape = std::nullopt);
/// jax.random.bernoulli with an array of probabilities p (float32 or float64, each in [0, 1]),
/// sampled in p's dtype. The shape defaults to p's shape; p must broadcast to `shape`.
///   auto m = loom::random::bernoulli(loom::random::key(0), loom::Array{0.1f, 0.5f, 0.9f});
Array bernoulli(const Key& key, const Array& p, std::optional<Shape> shape = std::nullopt);
/// jax.random.randint: integers in [minval, maxval); dtype int32 or uint32. Bounds are clipped
/// to the dtype's range as JAX does; minval >= maxval is a loom::Error (JAX returns minval).
///   auto i = loom::random::randint(loom::random::key(0), {5}, 0, 10);   // int32 in [0, 10)
Array randint(const Key& key, Shape shape, std::int64_t minval, std::int64_t maxval,
              DType dtype = DType::int32);
/// jax.random.gumbel (mode "low"): -log(-log(uniform(tiny, 1))); dtype float32 (default) or
/// float64.
///   auto g = loom::random::gumbel(loom::random::key(0), {3});
Array gumbel(const Key& key, Shape shape = {}, DType dtype = DType::float32);
/// jax.random.categorical: indices (int32) sampled from unnormalized log-probabilities along
/// `axis` of logits (Gumbel-max trick). `shape` must end with the batch shape of logits.
///   auto idx = loom::random::categorical(k, logits);   // logits (B, C) -> (B,)
Array categorical(const Key& key, const Array& logits, int axis = -1,
                  std::optional<Shape> shape = std::nullopt);
/// jax.random.permutation(key, n): a random ordering of 0..n-1 (int32); n < 0 is a loom::Error.
///   auto p = loom::random::permutation(loom::random::key(0), 5);   // a shuffle of 0..4
Array permutation(const Key& key, std::int64_t n);
/// jax.random.permutation(key, x, axis, independent): x shuffled along `axis`; with
/// independent=true each 1-D slice along `axis` is shuffled on its own. An integer scalar x
/// means permutation(key, x).
///   auto xs = loom::random::permutation(loom::random::key(0), x);   // the rows of x, shuffled
Array permutation(const Key& key, const Array& x, int axis = 0, bool independent = false);
/// jax.random.choice(key, n, shape, replace, p): samples of arange(n) (int32). `p` (float) gives
/// the probabilities; without replacement the draw count may not exceed n.
///   auto c = loom::random::choice(loom::random::key(0), 10, {3}, false);   // 3 distinct of 0..9
Array choice(const Key& key, std::int64_t n, Shape shape = {}, bool replace = true,
             std::optional<Array> p = std::nullopt);
/// jax.random.choice(key, a, shape, replace, p, axis): samples of the slices of `a` along axis
/// (result shape a.shape[:axis] + shape + a.shape[axis+1:]). An integer scalar a means n = a.
///   auto rows = loom::random::choice(loom::random::key(0), x, {2});   // 2 rows of x
Array choice(const Key& key, const Array& a, Shape shape = {}, bool replace = true,
             std::optional<Array> p = std::nullopt, int axis = 0);

}  // namespace loom::random
