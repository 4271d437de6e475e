// Recurrent cells and RNN helpers, as flax/linen/recurrent.py.
#include "loom/nn/recurrent.hpp"

#include <string>

#include "loom/nn/linear.hpp"
#include "loom/numpy/linalg.hpp"

namespace loom::nn {

namespace {

std::string shape_text(const Array& x) {
  return x.valid() ? x.shape().str() : std::string("an empty array");
}

void check_features(const char* cell, std::int64_t features) {
  if (features <= 0) {
    throw Error(std::string(cell) + ": features must be positive, got " + std::to_string(features) +
                detail::module_path_suffix());
  }
}

/// batch_dims + (features,) for input_shape (*batch, in).
Shape memory_shape(const char* cell, const Shape& input_shape, std::int64_t features) {
  check_features(cell, features);
  if (input_shape.empty()) {
    throw Error(std::string(cell) +
                ".initialize_carry: input_shape needs a feature axis, got shape ()");
  }
  Shape s = input_shape;
  s[s.size() - 1] = features;
  return s;
}

Dense dense(std::int64_t features, bool use_bias, const initializers::Initializer& kernel_init,
            const initializers::Initializer& bias_init, std::optional<DType> dtype,
            DType param_dtype) {
  return Dense{.features = features,
               .use_bias = use_bias,
               .dtype = dtype,
               .param_dtype = param_dtype,
               .kernel_init = kernel_init,
               .bias_init = bias_init};
}

}  // namespace

namespace detail {

void check_cell_inputs(const char* cell, const Array& h, const Array& inputs) {
  if (!inputs.valid() || inputs.ndim() == 0 || !h.valid() || h.ndim() == 0) {
    throw Error(std::string(cell) + ": inputs (*batch, features) and a carry (*batch, " +
                "features) of rank >= 1 expected, got inputs " + shape_text(inputs) +
                " and carry " + shape_text(h) + module_path_suffix());
  }
  Shape bi = inputs.shape(), bh = h.shape();
  bi.erase(bi.size() - 1);
  bh.erase(bh.size() - 1);
  if (bi != bh) {
    throw Error(std::string(cell) + ": the carry's batch dims must match the inputs', got " +
                "inputs " + inputs.shape().str() + " and carry " + h.shape().str() +
                module_path_suffix());
  }
}

Array carry_select(const Array& mask, const Array& a, const Array& b) {
  std::vector<std::int64_t> s = mask.shape().to_vector();
  while (static_cast<int>(s.size()) < a.ndim()) s.push_back(1);
  return numpy::where(numpy::reshape(mask, s), a, b);
}

RNNGeometry rnn_geometry(const Array& inputs, int num_feature_axes, bool time_major,
                         const std::optional<Array>& seq_lengths) {
  if (!inputs.valid() || inputs.ndim() < num_feature_axes + 1) {
    throw Error("RNN: inputs need a time axis and " + std::to_string(num_feature_axes) +
                " feature axis/axes, (*batch, time, *features) (or (time, *batch, *features) " +
                "when time_major), got " + shape_text(inputs) + module_path_suffix());
  }
  const int nd = inputs.ndim();
  RNNGeometry g{time_major ? 0 : nd - (num_feature_axes + 1), Shape{}, inputs.shape()};
  for (int i = time_major ? 1 : 0; i < (time_major ? nd - num_feature_axes : g.time_axis); ++i) {
    g.batch_dims.push_back(inputs.shape()[i]);
  }
  g.step_shape.erase(g.time_axis);
  if (inputs.shape()[g.time_axis] == 0) {
    throw Error("RNN: the time axis " + std::to_string(g.time_axis) + " of inputs " +
                inputs.shape().str() + " is empty; at least one step is needed" +
                module_path_suffix());
  }
  if (seq_lengths) {
    if (!seq_lengths->valid() || !is_integer(seq_lengths->dtype()) ||
        seq_lengths->shape() != g.batch_dims) {
      throw Error("RNN: seq_lengths must be an integer array of the batch shape " +
                  g.batch_dims.str() + " of inputs " + inputs.shape().str() + ", got " +
                  (seq_lengths->valid() ? std::string(dtype_name(seq_lengths->dtype())) +
                                              " of shape " + seq_lengths->shape().str()
                                        : std::string("an empty array")) +
                  module_path_suffix());
    }
  }
  return g;
}

std::vector<Array> last_step_masks(const Array& seq_lengths, std::int64_t steps) {
  const std::vector<double> lengths_f = seq_lengths.to_vector<double>();
  const std::vector<std::int64_t> lengths(lengths_f.begin(), lengths_f.end());
  std::vector<Array> masks;
  masks.reserve(static_cast<std::size_t>(steps));
  std::vector<std::uint8_t> m(lengths.size());
  for (std::int64_t t = 0; t < steps; ++t) {
    for (std::size_t b = 0; b < lengths.size(); ++b) {
      // carries[len - 1] in JAX: a negative index wraps once, out of bounds clamps.
      std::int64_t idx = lengths[b] - 1;
      if (idx < 0) idx += steps;
      idx = std::clamp<std::int64_t>(idx, 0, steps - 1);
      m[b] = idx == t ? 1 : 0;
    }
    masks.push_back(
        Array(std::vector<double>(m.begin(), m.end()), seq_lengths.shape(), DType::bool_));
  }
  return masks;
}

}  // namespace detail

Array flip_sequences(const Array& inputs, const std::optional<Array>& seq_lengths,
                     int num_batch_dims, bool time_major) {
  const int time_axis = time_major ? 0 : num_batch_dims;
  if (!inputs.valid() || inputs.ndim() <= time_axis || inputs.ndim() <= num_batch_dims) {
    throw Error("flip_sequences: inputs " + shape_text(inputs) + " lack the time axis " +
                std::to_string(time_axis) + " for " + std::to_string(num_batch_dims) +
                " batch dims");
  }
  const std::int64_t steps = inputs.shape()[time_axis];
  if (!seq_lengths)
    return numpy::slice(inputs, [&] {
      std::vector<numpy::Slice> s(static_cast<std::size_t>(time_axis) + 1);
      s.back().step = -1;
      return s;
    }());
  // idx[*batch, t] = (T - 1 - t + len[*batch]) mod T, laid out along the time axis.
  const std::vector<double> lengths_f = seq_lengths->to_vector<double>();
  const std::vector<std::int64_t> lengths(lengths_f.begin(), lengths_f.end());
  std::vector<double> idx(lengths.size() * static_cast<std::size_t>(steps));
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    for (std::int64_t t = 0; t < steps; ++t) {
      std::int64_t v = (steps - 1 - t + lengths[b]) % steps;
      if (v < 0) v += steps;
      const std::size_t at = time_major ? static_cast<std::size_t>(t) * lengths.size() + b
                                        : b * static_cast<std::size_t>(steps) + std::size_t(t);
      idx[at] = static_cast<double>(v);
    }
  }
  Shape batch = seq_lengths->shape();
  Shape ishape = batch;
  ishape.insert(time_axis, steps);
  while (ishape.size() < inputs.ndim()) ishape.push_back(1);
  return numpy::take_along_axis(inputs, Array(idx, ishape, DType::int32), time_axis);
}

Array concatenate_last(const Array& a, const Array& b) {
  return numpy::concatenate({a, b}, -1);
}

// ---- LSTMCell ----------------------------------------------------------------------------------

std::pair<LSTMCell::Carry, Array> LSTMCell::call(const Carry& carry, const Array& inputs) const {
  const auto& [c, h] = carry;
  detail::check_cell_inputs("LSTMCell", h, inputs);
  if (!c.valid() || c.shape() != h.shape()) {
    throw Error("LSTMCell: the carry (c, h) needs c and h of one shape, got c " + shape_text(c) +
                " and h " + h.shape().str() + detail::module_path_suffix());
  }
  const std::int64_t hidden = h.shape().back();
  const Dense di = dense(hidden, false, kernel_init, bias_init, dtype, param_dtype);
  const Dense dh = dense(hidden, true, recurrent_kernel_init, bias_init, dtype, param_dtype);
  Array i = gate_fn(child("ii", di)(inputs) + child("hi", dh)(h));
  Array f = gate_fn(child("if", di)(inputs) + child("hf", dh)(h));
  Array g = activation_fn(child("ig", di)(inputs) + child("hg", dh)(h));
  Array o = gate_fn(child("io", di)(inputs) + child("ho", dh)(h));
  Array new_c = f * c + i * g;
  Array new_h = o * activation_fn(new_c);
  return {{new_c, new_h}, new_h};
}

LSTMCell::Carry LSTMCell::initialize_carry(const random::Key& rng, const Shape& input_shape) const {
  const Shape mem = memory_shape("LSTMCell", input_shape, features);
  auto [k1, k2] = random::split2(rng);
  return {carry_init(k1, mem, param_dtype), carry_init(k2, mem, param_dtype)};
}

// ---- OptimizedLSTMCell -------------------------------------------------------------------------

std::pair<Array, Array> DenseParams::call(const Array& inputs) const {
  check_features("DenseParams", features);
  if (!inputs.valid() || inputs.ndim() == 0) {
    throw Error("DenseParams: inputs need at least one axis, got " + shape_text(inputs) +
                detail::module_path_suffix());
  }
  Array k = param("kernel", kernel_init, Shape{inputs.shape().back(), features}, param_dtype);
  Array b;
  if (use_bias) b = param("bias", bias_init, Shape{features}, param_dtype);
  return {k, b};
}

std::pair<OptimizedLSTMCell::Carry, Array> OptimizedLSTMCell::call(const Carry& carry,
                                                                   const Array& inputs) const {
  const auto& [c, h] = carry;
  detail::check_cell_inputs("OptimizedLSTMCell", h, inputs);
  if (!c.valid() || c.shape() != h.shape()) {
    throw Error("OptimizedLSTMCell: the carry (c, h) needs c and h of one shape, got c " +
                shape_text(c) + " and h " + h.shape().str() + detail::module_path_suffix());
  }
  const std::int64_t hidden = h.shape().back();
  std::vector<Array> ki, kh, bh;
  for (const char* gate : {"i", "f", "g", "o"}) {
    auto [k_i, unused] =
        child(std::string("i") + gate, DenseParams{.features = hidden,
                                                   .use_bias = false,
                                                   .param_dtype = param_dtype,
                                                   .kernel_init = kernel_init,
                                                   .bias_init = bias_init})(inputs);
    auto [k_h, b_h] =
        child(std::string("h") + gate, DenseParams{.features = hidden,
                                                   .use_bias = true,
                                                   .param_dtype = param_dtype,
                                                   .kernel_init = recurrent_kernel_init,
                                                   .bias_init = bias_init})(h);
    ki.push_back(k_i);
    kh.push_back(k_h);
    bh.push_back(b_h);
  }
  // promote_dtype(x, kernel, bias, dtype=self.dtype) on each side, then one GEMM per side.
  auto promoted = [this](const Array& x, const Array& a) {
    const DType dt = dtype.value_or(promote_types(x.dtype(), param_dtype));
    return a.dtype() == dt ? a : a.astype(dt);
  };
  Array yh = numpy::matmul(promoted(h, h), promoted(h, numpy::concatenate(kh, -1))) +
             promoted(h, numpy::concatenate(bh, -1));
  Array yi = numpy::matmul(promoted(inputs, inputs), promoted(inputs, numpy::concatenate(ki, -1)));
  std::vector<Array> zh = numpy::split(yh, 4, -1), zi = numpy::split(yi, 4, -1);
  Array i = gate_fn(zh[0] + zi[0]);
  Array f = gate_fn(zh[1] + zi[1]);
  Array g = activation_fn(zh[2] + zi[2]);
  Array o = gate_fn(zh[3] + zi[3]);
  Array new_c = f * c + i * g;
  Array new_h = o * activation_fn(new_c);
  return {{new_c, new_h}, new_h};
}

OptimizedLSTMCell::Carry OptimizedLSTMCell::initialize_carry(const random::Key& rng,
                                                             const Shape& input_shape) const {
  const Shape mem = memory_shape("OptimizedLSTMCell", input_shape, features);
  auto [k1, k2] = random::split2(rng);
  return {carry_init(k1, mem, param_dtype), carry_init(k2, mem, param_dtype)};
}

// ---- GRUCell, MGUCell, SimpleCell --------------------------------------------------------------

std::pair<Array, Array> GRUCell::call(const Array& h, const Array& inputs) const {
  detail::check_cell_inputs("GRUCell", h, inputs);
  const std::int64_t hidden = h.shape().back();
  const Dense di = dense(hidden, true, kernel_init, bias_init, dtype, param_dtype);
  Dense dh = dense(hidden, false, recurrent_kernel_init, bias_init, dtype, param_dtype);
  Array r = gate_fn(child("ir", di)(inputs) + child("hr", dh)(h));
  Array z = gate_fn(child("iz", di)(inputs) + child("hz", dh)(h));
  dh.use_bias = true;  // hn has a bias: its product is gated by r before the sum
  Array n = activation_fn(child("in", di)(inputs) + r * child("hn", dh)(h));
  Array new_h = (1.0 - z) * n + z * h;
  return {new_h, new_h};
}

Array GRUCell::initialize_carry(const random::Key& rng, const Shape& input_shape) const {
  return carry_init(rng, memory_shape("GRUCell", input_shape, features), param_dtype);
}

std::pair<Array, Array> MGUCell::call(const Array& h, const Array& inputs) const {
  detail::check_cell_inputs("MGUCell", h, inputs);
  const std::int64_t hidden = h.shape().back();
  const Dense di = dense(hidden, true, kernel_init, forget_bias_init, dtype, param_dtype);
  const Dense dh =
      dense(hidden, false, recurrent_kernel_init, activation_bias_init, dtype, param_dtype);
  Array f = gate_fn(child("if", di)(inputs) + child("hf", dh)(h));
  Dense dhn = dh;
  dhn.use_bias = reset_gate;
  Array x = child("hn", dhn)(h);
  if (reset_gate) x = x * f;
  Dense din = di;
  din.bias_init = activation_bias_init;
  Array n = activation_fn(child("in", din)(inputs) + x);
  Array new_h = (1.0 - f) * n + f * h;
  return {new_h, new_h};
}

Array MGUCell::initialize_carry(const random::Key& rng, const Shape& input_shape) const {
  return carry_init(rng, memory_shape("MGUCell", input_shape, features), param_dtype);
}

std::pair<Array, Array> SimpleCell::call(const Array& h, const Array& inputs) const {
  detail::check_cell_inputs("SimpleCell", h, inputs);
  const std::int64_t hidden = h.shape().back();
  Array pre =
      child("i", dense(hidden, true, kernel_init, bias_init, dtype, param_dtype))(inputs) +
      child("h", dense(hidden, false, recurrent_kernel_init, bias_init, dtype, param_dtype))(h);
  if (residual) pre = pre + h;
  Array new_h = activation_fn(pre);
  return {new_h, new_h};
}

Array SimpleCell::initialize_carry(const random::Key& rng, const Shape& input_shape) const {
  return carry_init(rng, memory_shape("SimpleCell", input_shape, features), param_dtype);
}

}  // namespace loom::nn
