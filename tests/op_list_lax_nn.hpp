// The primitives of loom::lax, loom::nn and loom::optim (the second block of tests/op_list.hpp,
// same conventions; names are the bound primitives' names, jnp.matmul/dot/einsum included as
// cases of lax's "contract"): one case per primitive, each a callable on std::vector<Array> with
// example inputs (float64 in the op's smooth domain: no input sits on a kink of relu/hard_tanh/...,
// window maxima are unique) and whether the op is differentiable in its floating inputs. The
// generated tests (jvp vs finite differences, vmap vs a loop, jit vs eager) run every case.
//
//   for (const OpCase& c : lax_nn_op_cases()) { Array y = c.fn(c.inputs); ... }
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "lax/contract.hpp"
#include "loom/loom.hpp"
#include "nn/normalization_rows.hpp"
#include "op_list.hpp"
#include "optim/kernels.hpp"

namespace loom::testing {

namespace op_list_lax_nn_detail {
// The same deterministic inputs as tests/op_list.hpp: sin(0.37 i + phase) * scale + shift.
inline Array waves(Shape shape, double phase, double scale = 1.0, double shift = 0.0) {
  return op_list_detail::wave64(shape, phase, scale, shift);
}
using op_list_detail::ints;
}  // namespace op_list_lax_nn_detail

/// Every primitive bound in src/lax, src/nn and src/optim.
inline std::vector<OpCase> lax_nn_op_cases() {
  using op_list_lax_nn_detail::ints;
  using op_list_lax_nn_detail::waves;
  using V = std::vector<Array>;
  std::vector<OpCase> c;
  auto unary = [&](std::string name, std::function<Array(const Array&)> f, Array x) {
    c.push_back({name, [f](const V& in) { return f(in[0]); }, {x}, true});
  };

  // ---- lax ----------------------------------------------------------------------------------
  c.push_back({"contract",
               [](const V& in) {
                 // einsum "bij,bjk->bik"
                 return loom::detail::contract(in[0], {0, 1, 2}, in[1], {0, 2, 3}, {0, 1, 3},
                                               Shape{2, 3, 4});
               },
               {waves({2, 3, 5}, 0.3), waves({2, 5, 4}, 1.1)},
               true});
  c.push_back({"contract",
               [](const V& in) { return numpy::matmul(in[0], in[1]); },
               {waves({2, 3, 4}, 0.3), waves({4, 2}, 0.8)},
               true});
  c.push_back({"contract",
               [](const V& in) { return numpy::dot(in[0], in[1]); },
               {waves({3, 4}, 0.5), waves({4}, 1.4)},
               true});
  c.push_back({"contract",
               [](const V& in) {
                 return numpy::einsum("ij,jk->ik", {in[0], in[1]});
               },
               {waves({3, 4}, 0.2), waves({4, 2}, 1.7)},
               true});
  c.push_back({"permute",
               [](const V& in) {
                 return loom::detail::permute(in[0], {2, 0, 1});
               },
               {waves({2, 3, 4}, 0.3)},
               true});
  c.push_back(
      {"contract",
       [](const V& in) {
         return lax::dot_general(
             in[0], in[1],
             {.lhs_contracting = {2}, .rhs_contracting = {1}, .lhs_batch = {0}, .rhs_batch = {0}});
       },
       {waves({2, 3, 4}, 0.3), waves({2, 4, 5}, 0.9)},
       true});
  c.push_back({"lax_pad",
               [](const V& in) {
                 return lax::pad(in[0], in[1], {{1, -1, 1}, {-1, 2, 0}});
               },
               {waves({3, 4}, 0.3), Array::scalar(0.25, DType::float64)},
               true});
  c.push_back({"reduce_window",
               [](const V& in) {
                 return lax::reduce_window(
                     in[0], lax::ReduceOp::sum, {1, 2, 2, 1}, {1, 1, 2, 1},
                     lax::Padding::explicit_({{0, 0}, {1, 0}, {0, 1}, {0, 0}}));
               },
               {waves({2, 4, 5, 3}, 0.3)},
               true});
  c.push_back({"reduce_window",
               [](const V& in) {
                 return lax::reduce_window(in[0], lax::ReduceOp::max, {1, 2, 2, 1}, {1, 2, 2, 1},
                                           lax::Padding::same());
               },
               {waves({2, 4, 5, 3}, 0.3)},
               true});
  c.push_back({"reduce_window",
               [](const V& in) {
                 return lax::reduce_window(in[0], lax::ReduceOp::min, {1, 3, 1}, {1, 1, 1},
                                           lax::Padding::valid());
               },
               {waves({2, 6, 3}, 0.7)},
               true});
  c.push_back({"reduce_window_mean",
               [](const V& in) {
                 return lax::reduce_window_mean(
                     in[0], {1, 2, 3, 1}, {1, 1, 2, 1},
                     lax::Padding::explicit_({{0, 0}, {1, 0}, {1, 1}, {0, 0}}));
               },
               {waves({2, 4, 5, 3}, 0.3)},
               true});
  c.push_back({"conv_general_dilated_bias",
               [](const V& in) {
                 return lax::conv_general_dilated_bias(in[0], in[1], in[2], {2, 1},
                                                       lax::Padding::same(), {}, {1, 2}, 1);
               },
               {waves({2, 5, 6, 3}, 0.3), waves({3, 2, 3, 4}, 1.3, 0.5), waves({4}, 0.9)},
               true});
  c.push_back({"conv_general_dilated",
               [](const V& in) {
                 return lax::conv_general_dilated(in[0], in[1], {2, 1},
                                                  lax::Padding::explicit_({{1, 1}, {0, 1}}), {1, 1},
                                                  {1, 2}, 1);
               },
               {waves({2, 5, 6, 3}, 0.3), waves({3, 2, 3, 4}, 1.3, 0.5)},
               true});
  c.push_back({"conv_general_dilated",
               [](const V& in) {
                 return lax::conv_general_dilated(in[0], in[1], {1}, lax::Padding::valid(), {2},
                                                  {1}, 2);
               },
               {waves({2, 5, 4}, 0.2), waves({3, 2, 6}, 0.8, 0.5)},
               true});
  c.push_back({"conv_general_dilated",
               [](const V& in) {
                 return lax::conv_transpose(in[0], in[1], {2, 2}, lax::Padding::same());
               },
               {waves({1, 3, 3, 2}, 0.4), waves({3, 3, 2, 3}, 1.0, 0.5)},
               true});

  // ---- nn activations (fused kernels) ----------------------------------------------------
  // phase 0.3: |x| >= 0.03 and |x| != 1, 6, 3: off every kink below.
  const Array x = waves({3, 5}, 0.3, 2.0);
  unary(
      "relu", [](const Array& a) { return nn::relu(a); }, x);
  unary(
      "relu6", [](const Array& a) { return nn::relu6(a); }, waves({3, 5}, 0.3, 4.0, 3.0));
  unary(
      "sigmoid", [](const Array& a) { return nn::sigmoid(a); }, x);
  unary(
      "log_sigmoid", [](const Array& a) { return nn::log_sigmoid(a); }, x);
  unary(
      "softplus", [](const Array& a) { return nn::softplus(a); }, x);
  unary(
      "silu", [](const Array& a) { return nn::silu(a); }, x);
  unary(
      "gelu", [](const Array& a) { return nn::gelu(a, true); }, x);
  unary(
      "gelu", [](const Array& a) { return nn::gelu(a, false); }, x);
  unary(
      "elu", [](const Array& a) { return nn::elu(a, 0.7); }, x);
  unary(
      "celu", [](const Array& a) { return nn::celu(a, 1.3); }, x);
  unary(
      "selu", [](const Array& a) { return nn::selu(a); }, x);
  unary(
      "leaky_relu", [](const Array& a) { return nn::leaky_relu(a, 0.1); }, x);
  unary(
      "hard_sigmoid", [](const Array& a) { return nn::hard_sigmoid(a); }, waves({3, 5}, 0.3, 4.0));
  unary(
      "hard_silu", [](const Array& a) { return nn::hard_silu(a); }, waves({3, 5}, 0.3, 4.0));
  unary(
      "hard_tanh", [](const Array& a) { return nn::hard_tanh(a); }, waves({3, 5}, 0.3, 1.5));
  unary(
      "glu", [](const Array& a) { return nn::glu(a, 0); }, waves({4, 3}, 0.3, 2.0));
  unary(
      "softmax", [](const Array& a) { return nn::softmax(a, -1); }, x);
  unary(
      "softmax",
      [](const Array& a) {
        return nn::softmax(a, {0, 2});
      },
      waves({2, 3, 4}, 0.3, 2.0));
  unary(
      "log_softmax", [](const Array& a) { return nn::log_softmax(a, 0); }, x);
  unary(
      "standardize", [](const Array& a) { return nn::standardize(a, -1, 1e-5); }, x);

  // ---- nn normalization rows (LayerNorm / RMSNorm) ---------------------------------------
  c.push_back(
      {"normalize_rows",
       [](const V& in) { return nn::detail::normalize_rows(in[0], in[1], in[2], 4, 1e-6, true); },
       {waves({3, 4}, 0.3, 2.0), waves({4}, 0.5, 0.5, 1.0), waves({4}, 1.5)},
       true});
  c.push_back({"normalize_rows",
               [](const V& in) {
                 return nn::detail::normalize_rows(in[0], in[1], Array(), 4, 1e-6, false);
               },
               {waves({3, 4}, 0.3, 2.0), waves({4}, 0.5, 0.5, 1.0)},
               true});

  // ---- optim: losses and fused update kernels --------------------------------------------
  c.push_back(
      {"softmax_cross_entropy_with_integer_labels",
       [](const V& in) { return optim::softmax_cross_entropy_with_integer_labels(in[0], in[1]); },
       {waves({3, 4}, 0.3, 2.0), ints({2, 0, 3}, {3})},
       true});
  c.push_back({"sigmoid_binary_cross_entropy",
               [](const V& in) { return optim::sigmoid_binary_cross_entropy(in[0], in[1]); },
               {waves({3, 4}, 0.3, 2.0), waves({3, 4}, 0.9, 0.4, 0.5)},
               true});
  c.push_back({"accuracy",
               [](const V& in) { return optim::accuracy(in[0], in[1]); },
               {waves({3, 4}, 0.3, 2.0), ints({2, 0, 3}, {3})},
               false});
  c.push_back({"trace",
               [](const V& in) {
                 // trace's update t <- g + 0.9 t; in place only for a uniquely held buffer.
                 return optim::detail::fused(
                     "trace", [](auto t, auto g) { return g + decltype(t)(0.9) * t; }, in[0],
                     in[1]);
               },
               {waves({3, 4}, 0.3), waves({3, 4}, 1.2)},
               false});
  return c;
}

}  // namespace loom::testing
