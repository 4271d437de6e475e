// examples/models/transformer.hpp: Flax's wmt Encoder1DBlock. The expected tree follows from
// flax/examples/wmt/models.py (MlpBlock, Encoder1DBlock) and Flax's naming rules; the parameter
// count is computed by hand below.
#include <gtest/gtest.h>

#include "models/transformer.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
namespace rnd = loom::random;
using loom::Array;
using loom::Tree;

namespace {

TEST(TransformerModel, EncoderBlockTreeAndParameterCount) {
  loom::models::Encoder1DBlock block{.num_heads = 4, .qkv_dim = 256, .mlp_dim = 1024};
  Tree v = block.init_shapes(rnd::key(0), jnp::zeros({2, 8, 256}));
  EXPECT_EQ(v.str(),
            "params/LayerNorm_0/bias: float32[256]\n"
            "params/LayerNorm_0/scale: float32[256]\n"
            "params/LayerNorm_1/bias: float32[256]\n"
            "params/LayerNorm_1/scale: float32[256]\n"
            "params/MlpBlock_0/Dense_0/bias: float32[1024]\n"
            "params/MlpBlock_0/Dense_0/kernel: float32[256,1024]\n"
            "params/MlpBlock_0/Dense_1/bias: float32[256]\n"
            "params/MlpBlock_0/Dense_1/kernel: float32[1024,256]\n"
            "params/MultiHeadDotProductAttention_0/key/kernel: float32[256,4,64]\n"
            "params/MultiHeadDotProductAttention_0/out/kernel: float32[4,64,256]\n"
            "params/MultiHeadDotProductAttention_0/query/kernel: float32[256,4,64]\n"
            "params/MultiHeadDotProductAttention_0/value/kernel: float32[256,4,64]\n");
  // 2 LayerNorms (2 * 2 * 256) + attention without biases (4 * 256 * 256)
  // + MLP (256 * 1024 + 1024 + 1024 * 256 + 256) = 1,024 + 262,144 + 525,568.
  EXPECT_EQ(loom::nn::count_variables(v.at("params")).count, 788736);
}

TEST(TransformerModel, DeterministicIsRepeatableAndDropoutIsNot) {
  loom::models::Encoder1DBlock block{.num_heads = 2, .qkv_dim = 8, .mlp_dim = 16};
  Array x = rnd::normal(rnd::key(1), {2, 5, 8});
  block.deterministic = true;
  Tree v = block.init(rnd::key(0), x);
  Array a = block.apply(v, x);
  EXPECT_EQ(a.shape(), x.shape());
  EXPECT_EQ(a.to_vector<float>(), block.apply(v, x).to_vector<float>());
  block.deterministic = false;
  Array b = block.apply(v, {.rngs = {{"dropout", rnd::key(2)}}}, x);
  Array c = block.apply(v, {.rngs = {{"dropout", rnd::key(3)}}}, x);
  EXPECT_NE(b.to_vector<float>(), c.to_vector<float>());
  EXPECT_TRUE(loom::testing::throws_error([&] { block.apply(v, jnp::ones({5, 8})); },
                                          {"Encoder1DBlock", "(batch, length, features)"}));
}

}  // namespace
