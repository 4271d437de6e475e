// loom::data: IDX files (the MNIST format, plain or gzip), MNIST-style datasets and a shuffling,
// prefetching batch iterator, as the input pipeline of Flax's examples/mnist.
//
//   auto ds = loom::data::load_mnist();                 // Fashion-MNIST from Debian by default
//   loom::data::BatchIterator batches(ds.train, {.batch_size = 128});
//   auto epoch = batches.epoch(loom::random::fold_in(key, epoch_index));
//   while (auto batch = epoch.next()) train_step(batch->image, batch->label);
//
// Every malformed or missing file is a loom::Error naming the file and what was expected.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "loom/array.hpp"
#include "loom/random.hpp"

namespace loom::data {

/// IDX element types (the third byte of the magic number).
enum class IdxType : std::uint8_t {
  ubyte = 0x08,
  sbyte = 0x09,
  int16 = 0x0B,
  int32 = 0x0C,
  float32 = 0x0D,
  float64 = 0x0E
};

/// An IDX file: magic 00 00 <type> <ndims>, ndims big-endian uint32 dims, then the elements
/// big-endian, row-major. `data` holds the elements in host byte order.
struct IdxFile {
  IdxType type = IdxType::ubyte;
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
  /// As a loom Array: ubyte -> uint32; sbyte, int16, int32 -> int32; float32; float64.
  Array to_array() const;
};

/// Reads an IDX file, gzip-compressed or not (detected from its content, not its name).
///   auto labels = loom::data::read_idx("t10k-labels-idx1-ubyte.gz");  // dims {10000}
/// Throws loom::Error naming the file on: a missing/unreadable file, a corrupt gzip stream, a
/// bad magic number, an unknown type, zero dims, or a data size that does not match the dims.
IdxFile read_idx(const std::string& path);

/// Writes an IDX file (gzip-compressed when `gzip`), the inverse of read_idx (tests, tools).
///   loom::data::write_idx("x.idx.gz", {.type = IdxType::ubyte, .dims = {2}, .data = {1, 2}},
///   true);
void write_idx(const std::string& path, const IdxFile& file, bool gzip = false);

/// Labelled images: uint8 pixels (size, rows, cols) row-major, one int32 label per image.
struct ImageDataset {
  std::vector<std::uint8_t> images;
  std::vector<std::int32_t> labels;
  std::int64_t size = 0, rows = 0, cols = 0;
};

struct MnistDataset {
  ImageDataset train, test;
};

/// Where Debian's dataset-fashion-mnist package installs Fashion-MNIST.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads the four standard files of `dir` (train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; each plain or with .gz appended): MNIST,
/// Fashion-MNIST or any IDX set in that layout. Images must be ubyte (n, rows, cols), labels
/// ubyte (n) with the same n.
///   auto ds = loom::data::load_mnist("/data/mnist");   // ds.train.size == 60000
MnistDataset load_mnist(const std::string& dir = kFashionMnistDir);

struct Batch {
  Array image;  // float32 (batch, rows, cols, 1), NHWC as Flax's mnist example
  Array label;  // int32 (batch,)
};

struct BatchOptions {
  std::int64_t batch_size = 128;
  bool shuffle = true;
  /// Drop the last partial batch (Flax's mnist train_epoch does); else it is yielded, smaller.
  bool drop_remainder = true;
  /// Pixels become p / 255 in [0, 1]; with mean and std set, (p / 255 - mean) / std.
  std::optional<float> mean = std::nullopt, std = std::nullopt;
  /// Build the next batch on a background thread while the current one is used.
  bool prefetch = true;
};

/// One pass over a dataset; batches come out of next() in order until it returns nullopt.
/// With prefetching a std::jthread builds batch i+1 while batch i is used; an exception there is
/// rethrown by next(); destruction stops and joins the thread.
class Epoch {
 public:
  Epoch(const ImageDataset& ds, const BatchOptions& options, std::vector<std::int64_t> order);
  ~Epoch();
  Epoch(const Epoch&) = delete;
  Epoch& operator=(const Epoch&) = delete;

  /// The next batch, or std::nullopt after the last one.
  std::optional<Batch> next();
  std::int64_t num_batches() const { return num_batches_; }
  /// The example indices of this epoch, in order (the permutation when shuffling).
  const std::vector<std::int64_t>& order() const { return order_; }

 private:
  Batch make(std::int64_t b) const;
  void produce(std::stop_token stop);

  const ImageDataset& ds_;
  BatchOptions options_;
  std::vector<std::int64_t> order_;
  std::int64_t num_batches_ = 0, next_ = 0;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  std::int64_t produced_ = 0;
  std::jthread worker_;  // last: joined before the members it uses are destroyed
};

/// Batches of a dataset, one Epoch at a time. The epoch's order is
/// random::permutation(key, ds.size) (jax.random.permutation, as Flax's mnist train_epoch);
/// derive one key per epoch, e.g. random::fold_in(seed_key, epoch) or the example's
/// `rng, input_rng = split(rng)` chain, so that a resumed run sees the same order.
class BatchIterator {
 public:
  /// The dataset must outlive the iterator and its epochs.
  BatchIterator(const ImageDataset& ds, BatchOptions options);
  /// An epoch in permutation(key) order (in index order when !shuffle; key unused then).
  Epoch epoch(const random::Key& key) const;
  std::int64_t num_batches() const;

 private:
  const ImageDataset& ds_;
  BatchOptions options_;
};

}  // namespace loom::data
