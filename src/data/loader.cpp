// The batch iterator: epoch order from random::permutation, float32 batches, prefetch thread.
#include <cstring>

#include "loom/data.hpp"

namespace loom::data {

BatchIterator::BatchIterator(const ImageDataset& ds, BatchOptions options)
    : ds_(ds), options_(options) {
  if (options_.batch_size <= 0) {
    throw Error("data.BatchIterator: batch_size must be positive, got " +
                std::to_string(options_.batch_size));
  }
  if (options_.mean.has_value() != options_.std.has_value()) {
    throw Error("data.BatchIterator: set both mean and std, or neither");
  }
  if (options_.std && !(*options_.std > 0)) {
    throw Error("data.BatchIterator: std must be positive, got " + std::to_string(*options_.std));
  }
  const std::int64_t pixels = ds.rows * ds.cols;
  if (ds.size < 0 || ds.rows < 0 || ds.cols < 0 ||
      static_cast<std::int64_t>(ds.images.size()) != ds.size * pixels ||
      static_cast<std::int64_t>(ds.labels.size()) != ds.size) {
    throw Error("data.BatchIterator: inconsistent dataset: size " + std::to_string(ds.size) +
                " of " + std::to_string(ds.rows) + "x" + std::to_string(ds.cols) +
                " images needs " + std::to_string(ds.size * pixels) + " pixels and " +
                std::to_string(ds.size) + " labels, got " + std::to_string(ds.images.size()) +
                " and " + std::to_string(ds.labels.size()));
  }
}

std::int64_t BatchIterator::num_batches() const {
  const std::int64_t bs = options_.batch_size;
  return options_.drop_remainder ? ds_.size / bs : (ds_.size + bs - 1) / bs;
}

Epoch BatchIterator::epoch(const random::Key& key) const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(ds_.size));
  if (options_.shuffle && ds_.size > 0) {
    const Array perm = random::permutation(key, ds_.size);
    const auto p = perm.to_vector<std::int32_t>();
    order.assign(p.begin(), p.end());
  } else {
    for (std::int64_t i = 0; i < ds_.size; ++i) order[static_cast<std::size_t>(i)] = i;
  }
  return Epoch(ds_, options_, std::move(order));
}

Epoch::Epoch(const ImageDataset& ds, const BatchOptions& options, std::vector<std::int64_t> order)
    : ds_(ds), options_(options), order_(std::move(order)) {
  const std::int64_t n = static_cast<std::int64_t>(order_.size()), bs = options_.batch_size;
  num_batches_ = options_.drop_remainder ? n / bs : (n + bs - 1) / bs;
  if (options_.prefetch && num_batches_ > 0) {
    worker_ = std::jthread([this](std::stop_token stop) { produce(stop); });
  }
}

Epoch::~Epoch() {
  if (worker_.joinable()) {
    worker_.request_stop();
    cv_.notify_all();
    worker_.join();
  }
}

Batch Epoch::make(std::int64_t b) const {
  const std::int64_t bs = options_.batch_size, n = static_cast<std::int64_t>(order_.size());
  const std::int64_t begin = b * bs, end = std::min(n, begin + bs), count = end - begin;
  const std::int64_t pixels = ds_.rows * ds_.cols;
  std::vector<float> image(static_cast<std::size_t>(count * pixels));
  std::vector<std::int32_t> label(static_cast<std::size_t>(count));
  // x / 255, or (x / 255 - mean) / std, as a per-pixel-value table (256 entries).
  float table[256];
  for (int v = 0; v < 256; ++v) {
    const float x = static_cast<float>(v) / 255.0f;
    table[v] = options_.mean ? (x - *options_.mean) / *options_.std : x;
  }
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t src = order_[static_cast<std::size_t>(begin + i)];
    if (src < 0 || src >= ds_.size) {
      throw Error("data.Epoch: example index " + std::to_string(src) + " at position " +
                  std::to_string(begin + i) + " is out of range for a dataset of " +
                  std::to_string(ds_.size));
    }
    const std::uint8_t* px = ds_.images.data() + src * pixels;
    float* dst = image.data() + i * pixels;
    for (std::int64_t j = 0; j < pixels; ++j) dst[j] = table[px[j]];
    label[static_cast<std::size_t>(i)] = ds_.labels[static_cast<std::size_t>(src)];
  }
  return {Array(image, Shape{count, ds_.rows, ds_.cols, 1}, DType::float32),
          Array(label, Shape{count}, DType::int32)};
}

void Epoch::produce(std::stop_token stop) {
  for (std::int64_t b = 0; b < num_batches_; ++b) {
    std::optional<Batch> batch;
    try {
      batch = make(b);
    } catch (...) {
      std::lock_guard lock(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    std::unique_lock lock(mu_);
    // Keep at most one batch ahead of the consumer.
    cv_.wait(lock, stop, [&] { return ready_.empty(); });
    if (stop.stop_requested()) return;
    ready_.push_back(std::move(*batch));
    ++produced_;
    cv_.notify_all();
  }
}

std::optional<Batch> Epoch::next() {
  if (next_ >= num_batches_) return std::nullopt;
  if (!worker_.joinable()) return make(next_++);
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !ready_.empty() || error_; });
  if (ready_.empty() && error_) {
    next_ = num_batches_;  // the epoch ends with the error
    std::rethrow_exception(error_);
  }
  Batch b = std::move(ready_.front());
  ready_.pop_front();
  ++next_;
  cv_.notify_all();
  return b;
}

}  // namespace loom::data
