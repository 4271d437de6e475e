// Dot-product attention, multi-head attention and the mask helpers, as flax/linen/attention.py.
#include "loom/nn/attention.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "loom/nn/activation.hpp"
#include "loom/nn/normalization.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/linalg.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::nn {

namespace {

[[noreturn]] void fail(const std::string& op, const std::string& what) {
  throw Error(op + ": " + what + detail::module_path_suffix());
}

std::string shape_of(const Array& x) {
  return x.valid() ? x.shape().str() : std::string("<empty array>");
}

// Flax's promote_dtype(..., inexact=True) over the given arrays.
DType inexact_dtype(const std::string& op, std::optional<DType> dtype,
                    std::initializer_list<const Array*> xs) {
  if (dtype.has_value()) {
    if (!is_floating(*dtype)) {
      fail(op, std::string("dtype must be inexact (floating), got ") + dtype_name(*dtype));
    }
    return *dtype;
  }
  DType t = (*xs.begin())->dtype();
  for (const Array* x : xs) t = promote_types(t, x->dtype());
  return is_floating(t) ? t : promote_types(DType::float32, t);
}

Array cast(const Array& x, DType dt) {
  return x.dtype() == dt ? x : x.astype(dt);
}

Shape batch_of(const Shape& s) {
  Shape b;
  for (int i = 0; i + 3 < s.size(); ++i) b.push_back(s[i]);
  return b;
}

void check_broadcasts_to(const std::string& op, const char* what, const Array& a,
                         const Shape& target) {
  bool ok = a.valid() && a.ndim() <= target.size();
  for (int i = 0; ok && i < a.ndim(); ++i) {
    const std::int64_t d = a.shape()[a.ndim() - 1 - i];
    ok = d == 1 || d == target[target.size() - 1 - i];
  }
  if (!ok) {
    fail(op, std::string(what) + " of shape " + shape_of(a) +
                 " does not broadcast to the attention weights' shape " + target.str() +
                 " [batch..., num_heads, q_length, kv_length]");
  }
}

// The weights of dot_product_attention_weights; `on_weights` (MultiHeadDotProductAttention's
// sow) sees them after the softmax, before dropout, as Flax's `module.sow`.
Array attention_weights(const std::string& op, const Array& query0, const Array& key0,
                        const AttentionOptions& o,
                        const std::function<void(const Array&)>& on_weights) {
  if (!query0.valid() || !key0.valid() || query0.ndim() < 3 || query0.ndim() != key0.ndim()) {
    fail(op, "query " + shape_of(query0) + " and key " + shape_of(key0) +
                 " must have the same rank, at least 3: [batch..., length, num_heads, depth]");
  }
  const Shape& qs = query0.shape();
  const Shape& ks = key0.shape();
  const int n = qs.size();
  if (batch_of(qs) != batch_of(ks)) {
    fail(op, "query " + qs.str() + " and key " + ks.str() + " batch dims must match");
  }
  if (qs[n - 2] != ks[n - 2]) {
    fail(op, "query " + qs.str() + " and key " + ks.str() + " num_heads (axis -2) must match");
  }
  if (qs[n - 1] != ks[n - 1]) {
    fail(op, "query " + qs.str() + " and key " + ks.str() + " depths (axis -1) must match");
  }
  const DType dt = inexact_dtype(op, o.dtype, {&query0, &key0});
  Shape wshape = batch_of(qs);
  wshape.push_back(qs[n - 2]);
  wshape.push_back(qs[n - 3]);
  wshape.push_back(ks[n - 3]);
  if (o.bias.has_value()) check_broadcasts_to(op, "bias", *o.bias, wshape);
  if (o.mask.has_value()) check_broadcasts_to(op, "mask", *o.mask, wshape);
  const bool dropout = !o.deterministic && o.dropout_rate > 0.0;
  if (dropout) {
    if (!(o.dropout_rate < 1.0)) {
      fail(op, "dropout_rate must be in [0, 1), got " + std::to_string(o.dropout_rate));
    }
    if (!o.dropout_rng.has_value()) {
      fail(op, "dropout_rate " + std::to_string(o.dropout_rate) +
                   " with deterministic = false needs a dropout_rng");
    }
  }

  // query / sqrt(depth) in dt (Flax divides the query, not the scores).
  const Array query = cast(query0, dt) / std::sqrt(static_cast<double>(qs[n - 1]));
  Array w = numpy::einsum("...qhd,...khd->...hqk", {query, cast(key0, dt)});
  if (o.bias.has_value()) w = w + *o.bias;
  if (o.mask.has_value()) {
    const double big_neg = dt == DType::float64 ? std::numeric_limits<double>::lowest()
                                                : std::numeric_limits<float>::lowest();
    w = numpy::where(*o.mask, w, numpy::full({}, big_neg, w.dtype()));
  }
  w = cast(softmax(w, -1), dt);
  if (on_weights) on_weights(w);
  if (dropout) {
    const double keep_prob = 1.0 - o.dropout_rate;
    Shape mask_shape = wshape;
    if (o.broadcast_dropout) {
      for (int i = 0; i + 2 < mask_shape.size(); ++i) mask_shape[i] = 1;  // batch and heads
    }
    const Array keep = random::bernoulli(*o.dropout_rng, keep_prob, mask_shape);
    w = w * (keep.astype(dt) / numpy::full({}, keep_prob, dt));
  }
  return w;
}

Array attention(const std::string& op, const Array& query, const Array& key, const Array& value,
                const AttentionOptions& o, const std::function<void(const Array&)>& on_weights) {
  if (!value.valid() || !query.valid() || !key.valid() || value.ndim() != query.ndim() ||
      key.ndim() != query.ndim()) {
    fail(op, "query " + shape_of(query) + ", key " + shape_of(key) + " and value " +
                 shape_of(value) + " must have the same rank");
  }
  const int n = query.ndim();
  if (n >= 3) {
    if (batch_of(value.shape()) != batch_of(query.shape())) {
      fail(op, "query " + query.shape().str() + " and value " + value.shape().str() +
                   " batch dims must match");
    }
    if (value.shape()[n - 2] != query.shape()[n - 2]) {
      fail(op, "query " + query.shape().str() + " and value " + value.shape().str() +
                   " num_heads (axis -2) must match");
    }
    if (value.shape()[n - 3] != key.shape()[n - 3]) {
      fail(op, "key " + key.shape().str() + " and value " + value.shape().str() +
                   " lengths (axis -3) must match");
    }
  }
  const DType dt = inexact_dtype(op, o.dtype, {&query, &key, &value});
  AttentionOptions od = o;
  od.dtype = dt;
  const Array w = attention_weights(op, cast(query, dt), cast(key, dt), od, on_weights);
  return numpy::einsum("...hqk,...khd->...qhd", {w, cast(value, dt)});
}

}  // namespace

Array dot_product_attention_weights(const Array& query, const Array& key,
                                    const AttentionOptions& options) {
  return attention_weights("dot_product_attention_weights", query, key, options, nullptr);
}

Array dot_product_attention(const Array& query, const Array& key, const Array& value,
                            const AttentionOptions& options) {
  return attention("dot_product_attention", query, key, value, options, nullptr);
}

// ---- MultiHeadDotProductAttention -----------------------------------------------------------

Array MultiHeadDotProductAttention::call(const Array& inputs_q, std::optional<Array> inputs_k,
                                         std::optional<Array> inputs_v, std::optional<Array> mask,
                                         std::optional<bool> deterministic_arg,
                                         std::optional<random::Key> dropout_rng,
                                         bool sow_weights) const {
  const std::string op = "MultiHeadDotProductAttention";
  if (!inputs_k.has_value()) {
    if (inputs_v.has_value()) {
      fail(op,
           "`inputs_k` cannot be None if `inputs_v` is not None. To have both `inputs_k` and "
           "`inputs_v` be the same value, pass in the value to `inputs_k` and leave `inputs_v` "
           "as None.");
    }
    inputs_k = inputs_q;
  }
  if (!inputs_v.has_value()) inputs_v = inputs_k;
  const Array& xq = inputs_q;
  const Array& xk = *inputs_k;
  const Array& xv = *inputs_v;
  const auto fail_inputs = [&](const std::string& what) {
    fail(op, what + " (inputs_q " + shape_of(xq) + ", inputs_k " + shape_of(xk) + ", inputs_v " +
                 shape_of(xv) + ")");
  };
  if (!xq.valid() || !xk.valid() || !xv.valid() || xq.ndim() < 2 || xk.ndim() != xq.ndim() ||
      xv.ndim() != xq.ndim()) {
    fail_inputs("the inputs must have the same rank, at least 2: [batch..., length, features]");
  }
  const int n = xq.ndim();
  for (int i = 0; i + 2 < n; ++i) {
    if (xk.shape()[i] != xq.shape()[i] || xv.shape()[i] != xq.shape()[i]) {
      fail_inputs("the inputs' batch dims must match");
    }
  }
  if (xk.shape()[n - 2] != xv.shape()[n - 2]) fail_inputs("inputs_k and inputs_v lengths differ");
  if (num_heads <= 0) fail(op, "num_heads must be positive, got " + std::to_string(num_heads));
  const std::int64_t features = out_features.value_or(xq.shape().back());
  const std::int64_t qkv = qkv_features.value_or(xq.shape().back());
  if (qkv <= 0 || qkv % num_heads != 0) {
    fail(op, "Memory dimension (" + std::to_string(qkv) +
                 ") must be divisible by number of heads (" + std::to_string(num_heads) + ").");
  }
  if (decode) {
    fail(op, "decode = true (the autoregressive cache) is not supported yet");
  }
  const std::int64_t head_dim = qkv / num_heads;

  const DenseGeneral dense{.features = {num_heads, head_dim},
                           .axis = {-1},
                           .use_bias = use_bias,
                           .dtype = dtype,
                           .param_dtype = param_dtype,
                           .kernel_init = kernel_init,
                           .bias_init = bias_init};
  Array query = child("query", dense)(xq);
  Array key = child("key", dense)(xk);
  const Array value = child("value", dense)(xv);
  if (normalize_qk) {
    // QK normalization (arxiv.org/abs/2302.05442): LayerNorm without bias over head_dim.
    const LayerNorm ln{.dtype = dtype, .param_dtype = param_dtype, .use_bias = false};
    query = child("query_ln", ln)(query);
    key = child("key_ln", ln)(key);
  }

  bool m_deterministic = true;
  if (dropout_rate > 0.0) {  // Flax requires `deterministic` only when dropout is on.
    m_deterministic = merge_param("deterministic", deterministic, deterministic_arg);
    if (!m_deterministic && !dropout_rng.has_value()) dropout_rng = make_rng("dropout");
  }
  const AttentionOptions options{.mask = std::move(mask),
                                 .broadcast_dropout = broadcast_dropout,
                                 .dropout_rng = dropout_rng,
                                 .dropout_rate = dropout_rate,
                                 .deterministic = m_deterministic,
                                 .dtype = dtype};
  std::function<void(const Array&)> on_weights;
  if (sow_weights) {
    on_weights = [this](const Array& w) { sow("intermediates", "attention_weights", w); };
  }
  const Array x = attention(op, query, key, value, options, on_weights);
  return child("out", DenseGeneral{.features = {features},
                                   .axis = {-2, -1},
                                   .use_bias = use_bias,
                                   .dtype = dtype,
                                   .param_dtype = param_dtype,
                                   .kernel_init = out_kernel_init.value_or(kernel_init),
                                   .bias_init = out_bias_init.value_or(bias_init)})(x);
}

namespace {

template <typename M>
MultiHeadDotProductAttention as_mha(const M& m) {
  return {.num_heads = m.num_heads,
          .dtype = m.dtype,
          .param_dtype = m.param_dtype,
          .qkv_features = m.qkv_features,
          .out_features = m.out_features,
          .broadcast_dropout = m.broadcast_dropout,
          .dropout_rate = m.dropout_rate,
          .deterministic = m.deterministic,
          .kernel_init = m.kernel_init,
          .out_kernel_init = m.out_kernel_init,
          .bias_init = m.bias_init,
          .out_bias_init = m.out_bias_init,
          .use_bias = m.use_bias,
          .decode = m.decode,
          .normalize_qk = m.normalize_qk};
}

}  // namespace

// The aliases run MultiHeadDotProductAttention's call in their own scope, so their trees are
// Flax's: <Alias>_<k>/{query,key,value,out}.
Array MultiHeadAttention::call(const Array& inputs_q, std::optional<Array> inputs_k,
                               std::optional<Array> inputs_v, std::optional<Array> mask,
                               std::optional<bool> deterministic_arg,
                               std::optional<random::Key> dropout_rng, bool sow_weights) const {
  const MultiHeadDotProductAttention mha = as_mha(*this);
  detail::FrameGuard guard(scope("call"), &mha);
  return mha.call(inputs_q, std::move(inputs_k), std::move(inputs_v), std::move(mask),
                  deterministic_arg, std::move(dropout_rng), sow_weights);
}

Array SelfAttention::call(const Array& inputs_q, std::optional<Array> mask,
                          std::optional<bool> deterministic_arg,
                          std::optional<random::Key> dropout_rng, bool sow_weights) const {
  const MultiHeadDotProductAttention mha = as_mha(*this);
  detail::FrameGuard guard(scope("call"), &mha);
  return mha.call(inputs_q, std::nullopt, std::nullopt, std::move(mask), deterministic_arg,
                  std::move(dropout_rng), sow_weights);
}

// ---- masks ----------------------------------------------------------------------------------

Array make_attention_mask(const Array& query_input, const Array& key_input,
                          const PairwiseFn& pairwise_fn, int extra_batch_dims, DType dtype) {
  if (!query_input.valid() || !key_input.valid()) {
    fail("make_attention_mask", "query_input " + shape_of(query_input) + " or key_input " +
                                    shape_of(key_input) + " is an empty array");
  }
  if (extra_batch_dims < 0) {
    fail("make_attention_mask",
         "extra_batch_dims must be >= 0, got " + std::to_string(extra_batch_dims));
  }
  const Array q = numpy::expand_dims(query_input, -1);
  const Array k = numpy::expand_dims(key_input, -2);
  Array mask = pairwise_fn ? pairwise_fn(q, k) : numpy::multiply(q, k);
  mask = numpy::expand_dims(mask, -3);
  if (extra_batch_dims > 0) {
    std::vector<int> lead(static_cast<std::size_t>(extra_batch_dims));
    for (int i = 0; i < extra_batch_dims; ++i) lead[static_cast<std::size_t>(i)] = i;
    mask = numpy::expand_dims(mask, lead);
  }
  return cast(mask, dtype);
}

Array make_causal_mask(const Array& x, int extra_batch_dims, DType dtype) {
  if (!x.valid() || x.ndim() == 0) {
    fail("make_causal_mask", "x needs at least one axis [batch..., len], got " + shape_of(x));
  }
  const Array idxs = numpy::broadcast_to(numpy::arange(x.shape().back()), x.shape());
  return make_attention_mask(
      idxs, idxs, [](const Array& a, const Array& b) { return numpy::greater_equal(a, b); },
      extra_batch_dims, dtype);
}

std::optional<Array> combine_masks(const std::vector<std::optional<Array>>& masks, DType dtype) {
  std::optional<Array> out;
  std::string ranks;
  for (const auto& m : masks) {
    if (m.has_value()) ranks += (ranks.empty() ? "" : ", ") + std::to_string(m->ndim());
  }
  for (const auto& m : masks) {
    if (!m.has_value()) continue;
    if (!m->valid() || (out.has_value() && m->ndim() != out->ndim())) {
      fail("combine_masks", "masks must have same rank: (" + ranks + ")");
    }
    out = out.has_value() ? numpy::logical_and(*out, *m) : *m;
  }
  if (out.has_value()) out = cast(*out, dtype);
  return out;
}

}  // namespace loom::nn
