// nn::Conv and nn::ConvTranspose (flax.linen.Conv, flax.linen.ConvTranspose; Flax keeps them in
// linen/linear.py), and nn::PaddingLike, Flax's padding argument.
//
//   nn::Conv conv{.features = 32, .kernel_size = {3, 3}};           // SAME, stride 1
//   loom::Tree v = conv.init(loom::random::key(0), jnp::ones({1, 28, 28, 1}));
//   // params: bias float32[32], kernel float32[3,3,1,32] -- the same values as Flax
//   loom::Array y = conv.apply(v, x);                                // (1, 28, 28, 32)
//
//   nn::Conv{.features = 64, .kernel_size = {7, 7}, .strides = {2},
//            .padding = {{3, 3}, {3, 3}}, .use_bias = false}(x);    // ResNet's conv_init
//   nn::Conv{.features = 8, .kernel_size = {3}, .padding = "CAUSAL"}(seq);   // 1-D, causal
//
// Inputs are channels-last, (*batch_dims, spatial..., features), with as many spatial dims as
// kernel_size has entries (1 to 3). As in Flax, several leading batch dims are flattened into
// one and restored, and an input without batch dim (rank len(kernel_size) + 1) gets one for the
// conv and loses it after. Beware Flax's trap, kept for parity: kernel_size {3} on an NHWC
// image is a 1-D conv over W with (N, H) as batch dims.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "loom/lax.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/nn/module.hpp"

namespace loom::nn {

/// One (low, high) entry of a padding sequence; an int p means (p, p), as in Flax.
struct PadPair {
  std::int64_t low = 0, high = 0;
  PadPair(std::int64_t p) : low(p), high(p) {}  // NOLINT: implicit, as Flax's int entries
  PadPair(std::int64_t lo, std::int64_t hi) : low(lo), high(hi) {}
  bool operator==(const PadPair&) const = default;
};

/// Flax's PaddingLike: a string ("SAME", "VALID", "CIRCULAR", "REFLECT", "CAUSAL"), an int
/// (the same (p, p) on every spatial dim), or one entry per spatial dim, each an int or a
/// (low, high) pair.
///   .padding = "VALID"    .padding = 1    .padding = {{3, 3}, {3, 3}}    .padding = {1, {0, 2}}
struct PaddingLike {
  enum class Kind { string, integer, sequence };
  Kind kind = Kind::string;
  std::string name = "SAME";   // Kind::string (kept as given; checked where it is used)
  std::int64_t value = 0;      // Kind::integer
  std::vector<PadPair> pairs;  // Kind::sequence

  PaddingLike(const char* s) : name(s) {}                         // NOLINT: implicit by design
  PaddingLike(std::string s) : name(std::move(s)) {}              // NOLINT
  PaddingLike(int p) : kind(Kind::integer), value(p) {}           // NOLINT
  PaddingLike(std::int64_t p) : kind(Kind::integer), value(p) {}  // NOLINT
  PaddingLike(std::initializer_list<PadPair> p) : kind(Kind::sequence), pairs(p) {}
  PaddingLike(std::vector<PadPair> p) : kind(Kind::sequence), pairs(std::move(p)) {}  // NOLINT

  bool is(const char* s) const { return kind == Kind::string && name == s; }
  bool operator==(const PaddingLike&) const = default;
  /// As Flax prints it: 'SAME', 1, ((1, 1), (0, 2)).
  std::string str() const;
};

/// Flax's canonicalize_padding for the strings lax knows ("SAME", "VALID") and the int and
/// sequence forms; `rank` spatial dims. Other strings, and sequences of another length, are a
/// loom::Error naming `op` ("Invalid padding format" as Flax, plus the module path).
///   nn::canonicalize_padding(1, 2, "Conv") -> lax::Padding::explicit_({{1, 1}, {1, 1}})
namespace detail {
// A mask field compares by value (shape, dtype and elements) where Flax's dataclass == would
// compare the array objects (and fail on the truth value of a many-element array).
inline bool same_mask(const std::optional<Array>& a, const std::optional<Array>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a.has_value()) return true;
  return a->shape() == b->shape() && a->dtype() == b->dtype() &&
         a->to_vector<double>() == b->to_vector<double>();
}
}  // namespace detail

lax::Padding canonicalize_padding(const PaddingLike& padding, std::size_t rank, const char* op);

/// flax.linen.Conv: kernel (*kernel_size, in_features / feature_group_count, features) drawn
/// with lecun_normal, bias (features,) zeros; y = conv(inputs, kernel) + bias.
/// strides, input_dilation and kernel_dilation take one entry per spatial dim, or a single
/// entry for all (Flax's int); empty means 1.
struct Conv : Module<Conv> {
  std::int64_t features = 0;              // required: number of filters
  std::vector<std::int64_t> kernel_size;  // required: one entry per spatial dim
  std::vector<std::int64_t> strides = {1};
  PaddingLike padding = "SAME";  // SAME, VALID, CIRCULAR, REFLECT, CAUSAL (1-D), int, pairs
  std::vector<std::int64_t> input_dilation = {1};   // > 1: a transposed conv
  std::vector<std::int64_t> kernel_dilation = {1};  // > 1: an atrous conv
  std::int64_t feature_group_count = 1;
  bool use_bias = true;
  std::optional<Array> mask;           // multiplies the kernel; must have the kernel's shape
  std::optional<DType> dtype;          // computation dtype; empty: promote inputs and params
  DType param_dtype = DType::float32;  // dtype the initializers produce
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer bias_init = initializers::zeros_init();
  /// Every field, the mask by value (detail::same_mask).
  bool operator==(const Conv& o) const {
    auto fields = [](const Conv& c) {
      return std::tie(c.features, c.kernel_size, c.strides, c.padding, c.input_dilation,
                      c.kernel_dilation, c.feature_group_count, c.use_bias, c.dtype, c.param_dtype,
                      c.kernel_init, c.bias_init);
    };
    return fields(*this) == fields(o) && detail::same_mask(mask, o.mask);
  }

  /// inputs (*batch_dims, spatial..., in_features) -> (*batch_dims, spatial'..., features).
  Array call(const Array& inputs) const;
};

/// flax.linen.ConvTranspose (lax.conv_transpose): kernel (*kernel_size, in_features, features),
/// or (*kernel_size, features, in_features) with transpose_kernel (then flipped and swapped as
/// Keras' Conv2DTranspose, so the same kernel as a Conv gives that Conv's gradient). With
/// "CIRCULAR" padding the output has size input * stride per dim, wrapped periodically.
///   nn::ConvTranspose{.features = 4, .kernel_size = {3, 3}, .strides = {2}}(x);  // 2x upsample
struct ConvTranspose : Module<ConvTranspose> {
  std::int64_t features = 0;                  // required
  std::vector<std::int64_t> kernel_size;      // required: one entry per spatial dim
  std::vector<std::int64_t> strides;          // empty (Flax's None): 1
  PaddingLike padding = "SAME";               // SAME, VALID, CIRCULAR, int, pairs
  std::vector<std::int64_t> kernel_dilation;  // empty (None): 1
  bool use_bias = true;
  std::optional<Array> mask;
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer bias_init = initializers::zeros_init();
  bool transpose_kernel = false;
  bool operator==(const ConvTranspose& o) const {
    auto fields = [](const ConvTranspose& c) {
      return std::tie(c.features, c.kernel_size, c.strides, c.padding, c.kernel_dilation,
                      c.use_bias, c.dtype, c.param_dtype, c.kernel_init, c.bias_init,
                      c.transpose_kernel);
    };
    return fields(*this) == fields(o) && detail::same_mask(mask, o.mask);
  }

  Array call(const Array& inputs) const;
};

}  // namespace loom::nn

// The mask is left out of the hash (equal masks still hash equal: it is a subset of ==).
LOOM_NN_HASH_FIELDS(loom::nn::Conv, m.features, m.kernel_size, m.strides, m.padding.kind,
                    m.padding.name, m.padding.value, m.input_dilation, m.kernel_dilation,
                    m.feature_group_count, m.use_bias, m.dtype, m.param_dtype, m.kernel_init,
                    m.bias_init)
LOOM_NN_HASH_FIELDS(loom::nn::ConvTranspose, m.features, m.kernel_size, m.strides,
                    m.padding.kind, m.padding.name, m.padding.value, m.kernel_dilation,
                    m.use_bias, m.dtype, m.param_dtype, m.kernel_init, m.bias_init,
                    m.transpose_kernel)
