// examples/mnist: an interrupted run resumed with --restore ends with the same parameters as an
// uninterrupted one (same data order, same keys), on a small synthetic dataset; the checkpoint
// has Flax's TrainState layout.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "mnist/train.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;

namespace {

loom::data::MnistDataset synthetic(std::int64_t n_train, std::int64_t n_test) {
  auto make = [](std::int64_t n, std::uint32_t salt) {
    loom::data::ImageDataset ds;
    ds.size = n;
    ds.rows = ds.cols = 28;
    ds.images.resize(static_cast<std::size_t>(n * 28 * 28));
    ds.labels.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      const auto label = static_cast<std::int32_t>((i * 7 + salt) % 10);
      ds.labels[static_cast<std::size_t>(i)] = label;
      for (std::int64_t p = 0; p < 28 * 28; ++p) {  // a label-dependent stripe plus noise
        const bool on = (p / 28) % 10 == label;
        ds.images[static_cast<std::size_t>(i * 784 + p)] =
            static_cast<std::uint8_t>((on ? 200 : 0) + ((p * 31 + i * 17 + salt) % 50));
      }
    }
    return ds;
  };
  return {make(n_train, 1), make(n_test, 5)};
}

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::remove_all(dir);
  return dir;
}

TEST(MnistExample, RestoredRunEqualsUninterruptedRun) {
  // 100 = 3 batches of 32 and a dropped remainder of 4; 45 test images = 2 eval batches of 40
  // and 5.
  const auto ds = synthetic(100, 45);
  mnist::Config config{.epochs = 3, .batch_size = 32, .seed = 7, .eval_batch_size = 40};
  std::ostringstream log;

  config.workdir = fresh_dir("loom_mnist_full").string();
  mnist::TrainResult full = mnist::train_and_evaluate(config, ds, log);

  config.workdir = fresh_dir("loom_mnist_resumed").string();
  config.epochs = 1;
  mnist::train_and_evaluate(config, ds, log);  // "interrupted" after epoch 1
  config.epochs = 3;
  config.restore = true;
  mnist::TrainResult resumed = mnist::train_and_evaluate(config, ds, log);

  EXPECT_NE(log.str().find("resuming at epoch 2"), std::string::npos) << log.str();
  EXPECT_EQ(full.state.step.item<int>(), 9);
  EXPECT_EQ(resumed.state.step.item<int>(), 9);
  auto a = loom::tree_leaves_with_path(full.state.to_state_dict());
  auto b = loom::tree_leaves_with_path(resumed.state.to_state_dict());
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.to_vector<double>(), b[i].second.to_vector<double>())
        << "leaf differs after restore";
  }
  // The metrics log of the resumed run holds all three epochs.
  EXPECT_EQ(resumed.log.rows().size(), 3u);
  // (epoch 1's row came back through metrics.csv, which keeps 9 significant digits)
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t c = 0; c < full.log.columns().size(); ++c) {
      EXPECT_NEAR(full.log.rows()[r][c], resumed.log.rows()[r][c],
                  1e-8 * (1 + std::abs(full.log.rows()[r][c])));
    }
  }
  // Flax's TrainState layout in the checkpoint: params/Conv_0/kernel float32 (3, 3, 1, 32).
  auto ckpt = loom::serialization::latest_checkpoint(config.workdir);
  ASSERT_TRUE(ckpt.has_value());
  EXPECT_EQ(ckpt->filename(), "checkpoint_9");
  std::ifstream file(*ckpt, std::ios::binary);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                  std::istreambuf_iterator<char>());
  loom::Tree raw = loom::serialization::msgpack_restore(bytes);
  const loom::Array& k = raw.at("params").at("Conv_0").at("kernel").leaf();
  EXPECT_EQ(k.shape(), (loom::Shape{3, 3, 1, 32}));
  EXPECT_EQ(k.dtype(), loom::DType::float32);
  EXPECT_TRUE(raw.at("opt_state").at("0").contains("trace"));
  EXPECT_EQ(raw.at("step").leaf().item<int>(), 9);
  // The loss falls on this easy data.
  EXPECT_LT(full.log.rows().back()[2], full.log.rows().front()[2]);
}

}  // namespace
