// Recurrent cells and the RNN over time, as flax/linen/recurrent.py: LSTMCell,
// OptimizedLSTMCell, GRUCell, MGUCell, SimpleCell, RNN and Bidirectional.
//
//   nn::LSTMCell cell{.features = 4};
//   auto carry = cell.initialize_carry(loom::random::key(1), x.shape());   // (c, h)
//   loom::Tree v = cell.init(loom::random::key(2), carry, x);
//   auto [new_carry, y] = cell.apply(v, carry, x);
//
//   nn::RNN<nn::LSTMCell> rnn{.cell = {.features = 4}};                   // x: (batch, time, in)
//   // or, deducing the cell type: nn::RNN{.cell = nn::LSTMCell{.features = 4}}
//   loom::Tree vr = rnn.init(loom::random::key(0), x);                    // params/cell/ii/...
//   loom::Array ys = rnn.apply(vr, x);                                    // (batch, time, 4)
//   auto [carry, ys2] = rnn.apply(vr, x, nn::RNNOptions{.seq_lengths = lengths,
//                                                      .return_carry = true});
//
// Carries: std::pair<Array, Array> (c, h) for the LSTM cells (Flax's tuple (c, h)), one Array h
// for GRUCell, MGUCell and SimpleCell; each cell names its type Cell::Carry. A cell's call
// returns (new_carry, output) as a std::pair.
//
// A user cell works with RNN when it has what Flax's RNNCellBase has: a `Carry` type,
// `std::pair<Carry, Array> call(const Carry&, const Array&) const`,
// `Carry initialize_carry(const random::Key&, const Shape&) const` and
// `static constexpr int num_feature_axes`.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loom/nn/activation.hpp"
#include "loom/nn/function.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/nn/module.hpp"
#include "loom/nn/transforms.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/random.hpp"

namespace loom::nn {

/// An elementwise activation (gate_fn, activation_fn).
using ActivationFn = Function<Array(const Array&)>;

namespace detail {
/// Checks a cell's inputs (rank >= 1) and hidden state h (rank >= 1, batch dims = inputs').
void check_cell_inputs(const char* cell, const Array& h, const Array& inputs);
}  // namespace detail

/// LSTM cell: i = gate(W_ii x + W_hi h + b_hi), f, g = act(...), o likewise;
/// c' = f c + i g, h' = o act(c'). Submodules ii, if, ig, io (Dense on the input, no bias) and
/// hi, hf, hg, ho (Dense on h, with bias); their features are h's last axis.
///   auto [carry2, y] = nn::LSTMCell{.features = 4}(carry, x);
struct LSTMCell : Module<LSTMCell> {
  using Carry = std::pair<Array, Array>;  // (c, h)
  std::int64_t features = 0;              // required: the size of c and h
  ActivationFn gate_fn = sigmoid;
  ActivationFn activation_fn = tanh;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer recurrent_kernel_init = initializers::orthogonal();
  initializers::Initializer bias_init = initializers::zeros_init();
  std::optional<DType> dtype;  // computation dtype; empty: promote inputs and params
  DType param_dtype = DType::float32;
  initializers::Initializer carry_init = initializers::zeros_init();
  bool operator==(const LSTMCell&) const = default;

  /// ((c', h'), h') for carry (c, h) and inputs (*batch, in).
  std::pair<Carry, Array> call(const Carry& carry, const Array& inputs) const;
  /// (c, h) of shape (*input_shape[:-1], features), drawn by carry_init with the two keys of
  /// split(rng), in param_dtype.
  Carry initialize_carry(const random::Key& rng, const Shape& input_shape) const;
  static constexpr int num_feature_axes = 1;
};

/// Flax's DenseParams: only creates Dense's params ("kernel" (in, features), "bias") and returns
/// them (bias is an invalid Array when use_bias is false).
struct DenseParams : Module<DenseParams> {
  std::int64_t features = 0;
  bool use_bias = true;
  DType param_dtype = DType::float32;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer bias_init = initializers::zeros_init();
  bool operator==(const DenseParams&) const = default;
  std::pair<Array, Array> call(const Array& inputs) const;
};

/// The LSTM with one GEMM for the four input kernels and one for the four recurrent ones; the
/// same params (names, shapes, values) as LSTMCell, through DenseParams submodules.
///   auto [carry2, y] = nn::OptimizedLSTMCell{.features = 4}(carry, x);
struct OptimizedLSTMCell : Module<OptimizedLSTMCell> {
  using Carry = std::pair<Array, Array>;  // (c, h)
  std::int64_t features = 0;
  ActivationFn gate_fn = sigmoid;
  ActivationFn activation_fn = tanh;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer recurrent_kernel_init = initializers::orthogonal();
  initializers::Initializer bias_init = initializers::zeros_init();
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  initializers::Initializer carry_init = initializers::zeros_init();
  bool operator==(const OptimizedLSTMCell&) const = default;

  std::pair<Carry, Array> call(const Carry& carry, const Array& inputs) const;
  Carry initialize_carry(const random::Key& rng, const Shape& input_shape) const;
  static constexpr int num_feature_axes = 1;
};

/// GRU cell: r = gate(W_ir x + b_ir + W_hr h), z likewise, n = act(W_in x + b_in +
/// r (W_hn h + b_hn)), h' = (1 - z) n + z h. ir, iz, in and hn have a bias; hr, hz do not.
///   auto [h2, y] = nn::GRUCell{.features = 4}(h, x);
struct GRUCell : Module<GRUCell> {
  using Carry = Array;  // h
  std::int64_t features = 0;
  ActivationFn gate_fn = sigmoid;
  ActivationFn activation_fn = tanh;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer recurrent_kernel_init = initializers::orthogonal();
  initializers::Initializer bias_init = initializers::zeros_init();
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  initializers::Initializer carry_init = initializers::zeros_init();
  bool operator==(const GRUCell&) const = default;

  std::pair<Carry, Array> call(const Carry& carry, const Array& inputs) const;
  /// h of shape (*input_shape[:-1], features) from carry_init(rng, ...).
  Carry initialize_carry(const random::Key& rng, const Shape& input_shape) const;
  static constexpr int num_feature_axes = 1;
};

/// Minimal gated unit: f = gate(W_if x + b_if + W_hf h), n = act(W_in x + b_in +
/// f (W_hn h + b_hn)) (without f and b_hn when reset_gate is false), h' = (1 - f) n + f h.
///   auto [h2, y] = nn::MGUCell{.features = 4}(h, x);
struct MGUCell : Module<MGUCell> {
  using Carry = Array;
  std::int64_t features = 0;
  ActivationFn gate_fn = sigmoid;
  ActivationFn activation_fn = tanh;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer recurrent_kernel_init = initializers::orthogonal();
  initializers::Initializer forget_bias_init = initializers::ones_init();
  initializers::Initializer activation_bias_init = initializers::zeros_init();
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  initializers::Initializer carry_init = initializers::zeros_init();
  bool reset_gate = true;
  bool operator==(const MGUCell&) const = default;

  std::pair<Carry, Array> call(const Carry& carry, const Array& inputs) const;
  Carry initialize_carry(const random::Key& rng, const Shape& input_shape) const;
  static constexpr int num_feature_axes = 1;
};

/// Elman cell: h' = act(W_i x + b_i + W_h h (+ h when residual)). Submodules i (bias), h.
///   auto [h2, y] = nn::SimpleCell{.features = 4}(h, x);
struct SimpleCell : Module<SimpleCell> {
  using Carry = Array;
  std::int64_t features = 0;
  ActivationFn activation_fn = tanh;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer recurrent_kernel_init = initializers::orthogonal();
  initializers::Initializer bias_init = initializers::zeros_init();
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  initializers::Initializer carry_init = initializers::zeros_init();
  bool residual = false;
  bool operator==(const SimpleCell&) const = default;

  std::pair<Carry, Array> call(const Carry& carry, const Array& inputs) const;
  Carry initialize_carry(const random::Key& rng, const Shape& input_shape) const;
  static constexpr int num_feature_axes = 1;
};

/// flip_sequences: reverses the time axis of each sequence, keeping padding (the steps at or
/// past seq_lengths[b]) at the end, as Flax's (index (T - 1 - t + len) mod T).
///   flip_sequences(x, lengths, /*num_batch_dims=*/1, /*time_major=*/false)
Array flip_sequences(const Array& inputs, const std::optional<Array>& seq_lengths,
                     int num_batch_dims, bool time_major);

/// The keyword arguments of RNN/Bidirectional calls (Flax's `__call__(..., *, ...)`); an
/// unset value means the module's field.
struct RNNOptions {
  std::optional<random::Key> init_key;  // key of initialize_carry (default key(0))
  std::optional<Array> seq_lengths;     // integer (*batch): steps past it are padding
  std::optional<bool> return_carry;
  std::optional<bool> time_major;
  std::optional<bool> reverse;
  std::optional<bool> keep_order;
};

/// What an RNN call returns: the outputs (*batch, time, *features) and, when return_carry, the
/// final carry (with seq_lengths, each sequence's carry after its last valid step).
///   loom::Array ys = rnn(x);               // converts to the outputs
///   auto [carry, ys] = rnn_rc(x);          // carry: std::optional<Cell::Carry>
template <typename Carry>
struct RNNOutput {
  std::optional<Carry> carry;
  Array outputs;
  operator const Array&() const { return outputs; }  // NOLINT: Flax returns the outputs
};

namespace detail {
/// where(mask, a, b) with mask (*batch) broadcast over a's trailing (feature) axes.
Array carry_select(const Array& mask, const Array& a, const Array& b);
template <typename A, typename B>
std::pair<A, B> carry_select(const Array& mask, const std::pair<A, B>& a,
                             const std::pair<A, B>& b) {
  return {carry_select(mask, a.first, b.first), carry_select(mask, a.second, b.second)};
}
/// Resolved geometry of an RNN call: the time axis and the batch dims. Checks the rank, a
/// non-empty time axis and seq_lengths' shape (*batch) and integer dtype.
struct RNNGeometry {
  int time_axis;
  Shape batch_dims;
  Shape step_shape;  // inputs' shape without the time axis
};
RNNGeometry rnn_geometry(const Array& inputs, int num_feature_axes, bool time_major,
                         const std::optional<Array>& seq_lengths);
/// Masks (bool, shape seq_lengths') selecting, for each sequence, the carry of step t: the
/// step JAX's carries[seq_lengths - 1] picks (negative indices wrap, out of range clamps).
std::vector<Array> last_step_masks(const Array& seq_lengths, std::int64_t steps);
}  // namespace detail

namespace detail {
/// The scan body of an RNN with seq_lengths and return_carry: the cell's (carry, y) as
/// (carry, (carry, y)), so the carry of every step is stacked (Flax's scan_fn). It runs the
/// cell's call in its own scope under the cell's name.
template <typename Cell>
struct CarryHistory : Extends<CarryHistory<Cell>, Cell> {
  static std::string loom_type_name() { return type_name<Cell>(); }
  auto call(const typename Cell::Carry& carry, const Array& x) const {
    auto [next, y] = this->base_call(carry, x);
    return std::pair{next, std::pair{next, y}};
  }
};
}  // namespace detail

/// Runs a cell over the time axis with nn::scan, as Flax's RNN: by default its params are
/// shared by every step (variable_broadcast "params", split_rngs {"params": false}); the
/// variables nest the cell under "cell". As in Flax, only the rng streams split_rngs names reach
/// the cell (an unsplit stream gives every step the same key).
///   nn::RNN<nn::GRUCell> rnn{.cell = {.features = 8}, .reverse = true, .keep_order = true};
///   loom::Array ys = rnn(x);
///   auto [carry, ys2] = rnn(x, h0, nn::RNNOptions{.return_carry = true});
/// unroll is accepted and ignored (the loop runs step by step).
template <typename Cell>
struct RNN : Module<RNN<Cell>> {
  using Carry = typename Cell::Carry;
  Cell cell;
  bool time_major = false;
  bool return_carry = false;
  bool reverse = false;
  bool keep_order = false;
  int unroll = 1;
  std::vector<std::pair<core::CollectionFilter, int>> variable_axes;
  core::CollectionFilter variable_broadcast = "params";
  core::CollectionFilter variable_carry;
  SplitRngs split_rngs = {{"params", false}};
  bool operator==(const RNN&) const = default;

  /// The outputs (and the final carry when return_carry); the carry from
  /// cell.initialize_carry(init_key or key(0), input shape without the time axis).
  RNNOutput<Carry> call(const Array& inputs, const RNNOptions& options = {}) const {
    return run(inputs, nullptr, options);
  }
  /// As above, starting from initial_carry.
  RNNOutput<Carry> call(const Array& inputs, const Carry& initial_carry,
                        const RNNOptions& options = {}) const {
    return run(inputs, &initial_carry, options);
  }

 private:
  RNNOutput<Carry> run(const Array& inputs, const Carry* initial_carry, const RNNOptions& o) const {
    const bool rc = o.return_carry.value_or(return_carry);
    const bool tm = o.time_major.value_or(time_major);
    const bool rev = o.reverse.value_or(reverse);
    const bool keep = o.keep_order.value_or(keep_order);
    const detail::RNNGeometry g =
        detail::rnn_geometry(inputs, Cell::num_feature_axes, tm, o.seq_lengths);
    const int nb = static_cast<int>(g.batch_dims.size());
    Array xs = rev ? flip_sequences(inputs, o.seq_lengths, nb, tm) : inputs;
    Carry carry = initial_carry != nullptr
                      ? *initial_carry
                      : cell.initialize_carry(o.init_key.value_or(random::key(0)), g.step_shape);
    const ScanOptions scan_options{.variable_axes = variable_axes,
                                   .variable_broadcast = variable_broadcast,
                                   .variable_carry = variable_carry,
                                   .split_rngs = split_rngs,
                                   .in_axes = g.time_axis,
                                   .out_axes = g.time_axis,
                                   .unroll = unroll};
    const std::int64_t steps = xs.shape()[g.time_axis];
    const bool slice_carry = o.seq_lengths.has_value() && rc;
    std::optional<Carry> selected;
    Array outputs;
    if (slice_carry) {
      // Every step's carry comes out stacked; each sequence keeps the one of its last step.
      detail::CarryHistory<Cell> body;
      static_cast<Cell&>(body) = cell;
      auto [last, history] = this->child(
          "cell", Scan<detail::CarryHistory<Cell>>{.target = body, .options = scan_options})(carry,
                                                                                             xs);
      const std::vector<Array> masks = detail::last_step_masks(*o.seq_lengths, steps);
      for (std::int64_t t = 0; t < steps; ++t) {
        Carry ct = detail::slice_at(history.first, t, g.time_axis);
        const Array& m = masks[static_cast<std::size_t>(t)];
        selected = selected ? detail::carry_select(m, ct, *selected) : std::move(ct);
      }
      carry = std::move(last);
      outputs = std::move(history.second);
    } else {
      auto [last, ys] =
          this->child("cell", Scan<Cell>{.target = cell, .options = scan_options})(carry, xs);
      carry = std::move(last);
      outputs = std::move(ys);
    }
    if (rev && keep) outputs = flip_sequences(outputs, o.seq_lengths, nb, tm);
    RNNOutput<Carry> out{std::nullopt, std::move(outputs)};
    if (rc) out.carry = slice_carry && selected ? std::move(*selected) : std::move(carry);
    return out;
  }
};

/// Concatenation along the last axis: Bidirectional's default merge_fn.
Array concatenate_last(const Array& a, const Array& b);

/// Runs forward_rnn over the inputs and backward_rnn over the reversed inputs (outputs put back
/// in order), merging the outputs with merge_fn; the carry is (forward, backward).
///   nn::Bidirectional<nn::RNN<nn::LSTMCell>, nn::RNN<nn::LSTMCell>> bi{
///       .forward_rnn = {.cell = {.features = 4}}, .backward_rnn = {.cell = {.features = 4}}};
///   loom::Array ys = bi(x);   // (batch, time, 8); params/forward_rnn/cell/..., backward_rnn/...
template <typename Forward, typename Backward>
struct Bidirectional : Module<Bidirectional<Forward, Backward>> {
  using Carry = std::pair<typename Forward::Carry, typename Backward::Carry>;
  Forward forward_rnn;
  Backward backward_rnn;
  Function<Array(const Array&, const Array&)> merge_fn = concatenate_last;
  bool time_major = false;
  bool return_carry = false;
  bool operator==(const Bidirectional&) const = default;

  RNNOutput<Carry> call(const Array& inputs, const RNNOptions& options = {}) const {
    return run(inputs, nullptr, options);
  }
  RNNOutput<Carry> call(const Array& inputs, const Carry& initial_carry,
                        const RNNOptions& options = {}) const {
    return run(inputs, &initial_carry, options);
  }

 private:
  RNNOutput<Carry> run(const Array& inputs, const Carry* initial_carry, const RNNOptions& o) const {
    RNNOptions fw = o, bw = o;
    fw.time_major = bw.time_major = o.time_major.value_or(time_major);
    fw.return_carry = bw.return_carry = true;
    if (o.init_key) {
      auto [kf, kb] = random::split2(*o.init_key);
      fw.init_key = kf;
      bw.init_key = kb;
    }
    fw.reverse = false;
    bw.reverse = true;
    bw.keep_order = true;
    auto f = this->child("forward_rnn", forward_rnn);
    auto b = this->child("backward_rnn", backward_rnn);
    auto rf = initial_carry ? f(inputs, initial_carry->first, fw) : f(inputs, fw);
    auto rb = initial_carry ? b(inputs, initial_carry->second, bw) : b(inputs, bw);
    RNNOutput<Carry> out{std::nullopt, merge_fn(rf.outputs, rb.outputs)};
    if (o.return_carry.value_or(return_carry)) {
      out.carry = Carry{std::move(*rf.carry), std::move(*rb.carry)};
    }
    return out;
  }
};

}  // namespace loom::nn

LOOM_NN_HASH_FIELDS(loom::nn::LSTMCell, m.features, m.gate_fn, m.activation_fn, m.kernel_init, m.recurrent_kernel_init, m.bias_init, m.dtype, m.param_dtype, m.carry_init)
LOOM_NN_HASH_FIELDS(loom::nn::OptimizedLSTMCell, m.features, m.gate_fn, m.activation_fn, m.kernel_init, m.recurrent_kernel_init, m.bias_init, m.dtype, m.param_dtype, m.carry_init)
LOOM_NN_HASH_FIELDS(loom::nn::GRUCell, m.features, m.gate_fn, m.activation_fn, m.kernel_init, m.recurrent_kernel_init, m.bias_init, m.dtype, m.param_dtype, m.carry_init)
LOOM_NN_HASH_FIELDS(loom::nn::MGUCell, m.features, m.gate_fn, m.activation_fn, m.kernel_init, m.recurrent_kernel_init, m.forget_bias_init, m.activation_bias_init, m.dtype, m.param_dtype, m.carry_init, m.reset_gate)
LOOM_NN_HASH_FIELDS(loom::nn::SimpleCell, m.features, m.activation_fn, m.kernel_init, m.recurrent_kernel_init, m.bias_init, m.dtype, m.param_dtype, m.carry_init, m.residual)
LOOM_NN_HASH_FIELDS(loom::nn::DenseParams, m.features, m.use_bias, m.param_dtype, m.kernel_init, m.bias_init)
template <typename Cell>
struct std::hash<loom::nn::RNN<Cell>> {
  std::size_t operator()(const loom::nn::RNN<Cell>& m) const {
    return loom::nn::hash_fields(m, m.cell, m.time_major, m.return_carry, m.reverse, m.keep_order,
                                 m.unroll);
  }
};
template <typename Forward, typename Backward>
struct std::hash<loom::nn::Bidirectional<Forward, Backward>> {
  std::size_t operator()(const loom::nn::Bidirectional<Forward, Backward>& m) const {
    return loom::nn::hash_fields(m, m.forward_rnn, m.backward_rnn, m.merge_fn, m.time_major,
                                 m.return_carry);
  }
};
