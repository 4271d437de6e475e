// loom::data: IDX reading (plain and gzip) with validation, the MNIST-layout loader, and the
// batch iterator (permutation order, remainder handling, normalization, prefetch thread).
// Inputs are small IDX files this test writes itself (bytes spelled out per the IDX format);
// the real Fashion-MNIST files are checked when Debian's dataset-fashion-mnist is installed.
#include "loom/data.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
namespace data = loom::data;
using loom::Array;
using loom::testing::throws_error;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("loom_data_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& bytes, bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(p.c_str(), "wb");
    ASSERT_TRUE(f);
    ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
}

// n images of rows x cols, pixel (i, r, c) = (i * 7 + r * cols + c) % 256; label i % 10.
void write_mnist_dir(const fs::path& dir, std::uint32_t n_train, std::uint32_t n_test,
                     std::uint8_t rows, std::uint8_t cols, bool gzip) {
  auto images = [&](std::uint32_t n) {
    std::vector<std::uint8_t> b = {0,
                                   0,
                                   0x08,
                                   3,
                                   std::uint8_t(n >> 24),
                                   std::uint8_t(n >> 16),
                                   std::uint8_t(n >> 8),
                                   std::uint8_t(n),
                                   0,
                                   0,
                                   0,
                                   rows,
                                   0,
                                   0,
                                   0,
                                   cols};
    for (std::uint32_t i = 0; i < n; ++i)
      for (int j = 0; j < rows * cols; ++j) b.push_back(std::uint8_t((i * 7 + j) % 256));
    return b;
  };
  auto labels = [&](std::uint32_t n) {
    std::vector<std::uint8_t> b = {0,
                                   0,
                                   0x08,
                                   1,
                                   std::uint8_t(n >> 24),
                                   std::uint8_t(n >> 16),
                                   std::uint8_t(n >> 8),
                                   std::uint8_t(n)};
    for (std::uint32_t i = 0; i < n; ++i) b.push_back(std::uint8_t(i % 10));
    return b;
  };
  const std::string ext = gzip ? ".gz" : "";
  write_bytes(dir / ("train-images-idx3-ubyte" + ext), images(n_train), gzip);
  write_bytes(dir / ("train-labels-idx1-ubyte" + ext), labels(n_train), gzip);
  write_bytes(dir / ("t10k-images-idx3-ubyte" + ext), images(n_test), gzip);
  write_bytes(dir / ("t10k-labels-idx1-ubyte" + ext), labels(n_test), gzip);
}

}  // namespace

TEST(Data, ReadIdxPlainAndGzip) {
  fs::path dir = temp_dir("read");
  // int32 (0x0C) of dims (2, 3), big-endian: values -1, 0, 1, 256, 65536, 2^31 - 1.
  std::vector<std::uint8_t> b = {0, 0, 0x0C, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (std::uint32_t v : {0xFFFFFFFFu, 0u, 1u, 256u, 65536u, 0x7FFFFFFFu})
    for (int s = 24; s >= 0; s -= 8) b.push_back(std::uint8_t(v >> s));
  for (bool gz : {false, true}) {
    fs::path p = dir / (gz ? "x.idx.gz" : "x.idx");
    write_bytes(p, b, gz);
    data::IdxFile f = data::read_idx(p.string());
    EXPECT_EQ(f.type, data::IdxType::int32);
    EXPECT_EQ(f.dims, (std::vector<std::int64_t>{2, 3}));
    Array a = f.to_array();
    EXPECT_EQ(a.shape(), (loom::Shape{2, 3}));
    EXPECT_EQ(a.to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{-1, 0, 1, 256, 65536, 2147483647}));
  }
  // float32 1.5 = 0x3FC00000, ubyte and sbyte.
  write_bytes(dir / "f.idx", {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0, 0});
  EXPECT_EQ(data::read_idx((dir / "f.idx").string()).to_array().to_vector<float>(),
            std::vector<float>{1.5f});
  write_bytes(dir / "s.idx", {0, 0, 0x09, 1, 0, 0, 0, 2, 0xFF, 0x7F});
  EXPECT_EQ(data::read_idx((dir / "s.idx").string()).to_array().to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{-1, 127}));
  // write_idx round trip (gzip and plain).
  data::IdxFile w{.type = data::IdxType::float64, .dims = {2}, .data = {}};
  double vals[2] = {0.25, -3.0};
  w.data.resize(16);
  std::memcpy(w.data.data(), vals, 16);
  for (bool gz : {false, true}) {
    data::write_idx((dir / "w.idx").string(), w, gz);
    EXPECT_EQ(data::read_idx((dir / "w.idx").string()).to_array().to_vector<double>(),
              (std::vector<double>{0.25, -3.0}));
  }
  fs::remove_all(dir);
}

TEST(Data, MalformedIdxFilesNameTheFile) {
  fs::path dir = temp_dir("bad");
  auto path = [&](const char* n) { return (dir / n).string(); };
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("absent.idx")); },
                           {"read_idx", "absent.idx", "no such file"}));
  write_bytes(dir / "short", {0, 0});
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("short")); }, {"short", "too short"}));
  write_bytes(dir / "magic", {1, 0, 0x08, 1, 0, 0, 0, 1, 5});
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("magic")); }, {"magic", "bad magic number"}));
  write_bytes(dir / "type", {0, 0, 0x07, 1, 0, 0, 0, 1, 5});
  EXPECT_TRUE(
      throws_error([&] { data::read_idx(path("type")); }, {"type", "unknown element type 0x07"}));
  write_bytes(dir / "nodims", {0, 0, 0x08, 0});
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("nodims")); }, {"nodims", "zero dimensions"}));
  write_bytes(dir / "hdr", {0, 0, 0x08, 3, 0, 0, 0, 1});
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("hdr")); }, {"hdr", "truncated header"}));
  write_bytes(dir / "trunc", {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3});
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("trunc")); },
                           {"trunc", "data size mismatch", "(2, 2)", "need 4 bytes", "has 3"}));
  write_bytes(dir / "extra", {0, 0, 0x08, 1, 0, 0, 0, 1, 1, 2});
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("extra")); },
                           {"extra", "data size mismatch", "has 2"}));
  // Huge dims must not allocate: a size mismatch.
  write_bytes(dir / "huge", {0,    0,    0x0E, 3,    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                             0xFF, 0xFF, 0xFF, 0xFF, 1,    2,    3,    4,    5,    6,    7,    8});
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("huge")); },
                           {"huge", "data size mismatch", "more than 8"}));
  // A small .gz whose body inflates far beyond what its header describes stops early.
  std::vector<std::uint8_t> bomb = {0, 0, 0x08, 1, 0, 0, 0, 1};
  bomb.resize(bomb.size() + (std::size_t{8} << 20), 0);
  write_bytes(dir / "bomb.gz", bomb, true);
  EXPECT_LT(fs::file_size(dir / "bomb.gz"), std::uintmax_t{1} << 20);
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("bomb.gz")); },
                           {"bomb.gz", "more data than its header's dims describe"}));
  // A gzip stream cut in half, and one with a corrupted body.
  fs::path good = dir / "good.gz";
  std::vector<std::uint8_t> body = {0, 0, 0x08, 1, 0, 0, 0, 200};
  for (int i = 0; i < 200; ++i) body.push_back(std::uint8_t(i * 31));
  write_bytes(good, body, true);
  std::ifstream in(good, std::ios::binary);
  std::vector<char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::uint8_t> half(gz.begin(), gz.begin() + std::ptrdiff_t(gz.size() / 2));
  write_bytes(dir / "half.gz", half);
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("half.gz")); }, {"half.gz", "gzip"}));
  std::vector<std::uint8_t> bad(gz.begin(), gz.end());
  for (std::size_t i = 12; i < bad.size() - 8; ++i) bad[i] ^= 0x5A;
  write_bytes(dir / "corrupt.gz", bad);
  EXPECT_TRUE(throws_error([&] { data::read_idx(path("corrupt.gz")); }, {"corrupt.gz", "gzip"}));
  fs::remove_all(dir);
}

TEST(Data, LoadMnistLayoutPlainAndGzip) {
  for (bool gz : {false, true}) {
    fs::path dir = temp_dir(gz ? "mnist_gz" : "mnist");
    write_mnist_dir(dir, 25, 7, 4, 3, gz);
    data::MnistDataset ds = data::load_mnist(dir.string());
    EXPECT_EQ(ds.train.size, 25);
    EXPECT_EQ(ds.test.size, 7);
    EXPECT_EQ(ds.train.rows, 4);
    EXPECT_EQ(ds.train.cols, 3);
    EXPECT_EQ(ds.train.images[2 * 12 + 5], (2 * 7 + 5) % 256);
    EXPECT_EQ(ds.test.labels[6], 6);
    fs::remove_all(dir);
  }
  fs::path dir = temp_dir("mnist_missing");
  write_mnist_dir(dir, 5, 5, 2, 2, false);
  fs::remove(dir / "t10k-labels-idx1-ubyte");
  EXPECT_TRUE(throws_error([&] { data::load_mnist(dir.string()); },
                           {"load_mnist", "t10k-labels-idx1-ubyte", "missing"}));
  // Label count not matching the images.
  write_bytes(dir / "t10k-labels-idx1-ubyte", {0, 0, 0x08, 1, 0, 0, 0, 4, 1, 2, 3, 4});
  EXPECT_TRUE(throws_error([&] { data::load_mnist(dir.string()); },
                           {"load_mnist", "5 images", "4 labels"}));
  fs::remove_all(dir);
}

namespace {
data::ImageDataset tiny(std::int64_t n) {
  data::ImageDataset ds;
  ds.size = n;
  ds.rows = 2;
  ds.cols = 2;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < 4; ++j) ds.images.push_back(std::uint8_t(i * 4 + j));
    ds.labels.push_back(std::int32_t(i));
  }
  return ds;
}
}  // namespace

TEST(Data, BatchesFollowThePermutationOfTheKey) {
  data::ImageDataset ds = tiny(10);
  for (bool prefetch : {true, false}) {
    data::BatchIterator it(ds, {.batch_size = 4, .prefetch = prefetch});
    EXPECT_EQ(it.num_batches(), 2);  // drop_remainder: 10 // 4
    const auto key = loom::random::key(3);
    auto epoch = it.epoch(key);
    // The order is jax.random.permutation(key, 10), the same call loom::random makes.
    const auto p32 = loom::random::permutation(key, 10).to_vector<std::int32_t>();
    const std::vector<std::int64_t> perm(p32.begin(), p32.end());
    EXPECT_EQ(epoch.order(), perm);
    std::vector<std::int32_t> seen;
    std::int64_t count = 0;
    while (auto b = epoch.next()) {
      ++count;
      EXPECT_EQ(b->image.shape(), (loom::Shape{4, 2, 2, 1}));
      EXPECT_EQ(b->image.dtype(), loom::DType::float32);
      EXPECT_EQ(b->label.dtype(), loom::DType::int32);
      auto labels = b->label.to_vector<std::int32_t>();
      auto px = b->image.to_vector<float>();
      for (std::size_t i = 0; i < labels.size(); ++i) {
        // image i holds pixels 4 * label + j, scaled to [0, 1].
        for (int j = 0; j < 4; ++j)
          EXPECT_FLOAT_EQ(px[i * 4 + j], float(labels[i] * 4 + j) / 255.f);
        seen.push_back(labels[i]);
      }
    }
    EXPECT_EQ(count, 2);
    EXPECT_FALSE(epoch.next().has_value());
    EXPECT_EQ(seen.size(), 8u);
    for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], perm[i]);
    // Same key, same order; another key, another order.
    EXPECT_EQ(it.epoch(key).order(), perm);
    EXPECT_NE(it.epoch(loom::random::fold_in(key, 1)).order(), perm);
  }
}

TEST(Data, RemainderNormalizationAndErrors) {
  data::ImageDataset ds = tiny(10);
  data::BatchIterator keep(
      ds, {.batch_size = 4, .shuffle = false, .drop_remainder = false, .mean = 0.5f, .std = 0.25f});
  EXPECT_EQ(keep.num_batches(), 3);
  auto epoch = keep.epoch(loom::random::key(0));
  std::vector<std::int64_t> sizes;
  std::optional<data::Batch> last;
  while (auto b = epoch.next()) {
    sizes.push_back(b->label.shape()[0]);
    last = std::move(b);
  }
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{4, 4, 2}));
  EXPECT_EQ(last->label.to_vector<std::int32_t>(), (std::vector<std::int32_t>{8, 9}));
  // pixel 36 of image 9: (36/255 - 0.5) / 0.25
  EXPECT_FLOAT_EQ(last->image.to_vector<float>()[4], (36.f / 255.f - 0.5f) / 0.25f);
  EXPECT_TRUE(throws_error([&] { data::BatchIterator(ds, {.batch_size = 0}); },
                           {"BatchIterator", "batch_size must be positive"}));
  EXPECT_TRUE(throws_error([&] { data::BatchIterator(ds, {.mean = 0.1f}); }, {"mean and std"}));
  data::ImageDataset broken = ds;
  broken.labels.pop_back();
  EXPECT_TRUE(throws_error([&] { data::BatchIterator(broken, {}); }, {"inconsistent dataset"}));
  // An epoch dropped early stops its prefetch thread cleanly (no hang, no leak under ASan).
  data::BatchIterator it(ds, {.batch_size = 1});
  for (int rep = 0; rep < 20; ++rep) {
    auto e = it.epoch(loom::random::key(rep));
    ASSERT_TRUE(e.next().has_value());
  }
}

TEST(Data, PrefetchErrorReachesTheConsumer) {
  // An order with an index past the dataset: the background thread fails on batch 1 and next()
  // rethrows it on the consumer's thread (never a crash); batch 0 still arrives first.
  data::ImageDataset ds = tiny(4);
  for (bool prefetch : {true, false}) {
    data::Epoch epoch(ds, {.batch_size = 2, .prefetch = prefetch}, {0, 1, 99, 3});
    EXPECT_EQ(epoch.num_batches(), 2);
    ASSERT_TRUE(epoch.next().has_value());
    EXPECT_TRUE(
        throws_error([&] { epoch.next(); }, {"data.Epoch", "example index 99", "dataset of 4"}));
  }
}

TEST(Data, RealFashionMnistIfInstalled) {
  if (!fs::exists(fs::path(data::kFashionMnistDir) / "train-images-idx3-ubyte.gz") &&
      !fs::exists(fs::path(data::kFashionMnistDir) / "train-images-idx3-ubyte")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  data::MnistDataset ds = data::load_mnist();
  EXPECT_EQ(ds.train.size, 60000);
  EXPECT_EQ(ds.test.size, 10000);
  EXPECT_EQ(ds.train.rows, 28);
  EXPECT_EQ(ds.train.cols, 28);
  for (auto l : ds.test.labels) ASSERT_TRUE(l >= 0 && l < 10);
  data::BatchIterator it(ds.test, {.batch_size = 128});
  EXPECT_EQ(it.num_batches(), 10000 / 128);
  auto b = it.epoch(loom::random::key(0)).next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->image.shape(), (loom::Shape{128, 28, 28, 1}));
  auto px = b->image.to_vector<float>();
  EXPECT_GE(*std::min_element(px.begin(), px.end()), 0.f);
  EXPECT_LE(*std::max_element(px.begin(), px.end()), 1.f);
}
