// Training utilities: a per-epoch progress bar, and a metrics log written as CSV and as an SVG
// plot of the loss and accuracy curves (what Flax's examples get from clu's metric writers).
//
//   loom::training::ProgressBar bar(std::cout, "epoch 1", steps_per_epoch, batch_size);
//   for (...) bar.update(step + 1, {{"loss", loss}, {"accuracy", acc}});
//   bar.finish();
//
//   loom::training::MetricsLog log({"epoch", "train_loss", "train_accuracy", "test_loss",
//                                   "test_accuracy"});
//   log.add({1, 0.52, 0.81, 0.44, 0.84});
//   log.write_csv(workdir + "/metrics.csv");
//   log.write_svg(workdir + "/metrics.svg", "epoch", {{"train_loss", "test_loss"},
//                                                     {"train_accuracy", "test_accuracy"}});
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace loom::training {

/// One line that redraws itself on a terminal:
///   epoch 1 [=========>          ] 230/469  loss 0.5123  accuracy 0.8142  4210 ex/s  ETA 0:56
/// When the stream is not a terminal (a log file, CI) it prints a plain line at every 10% and at
/// the end instead of redrawing.
class ProgressBar {
 public:
  /// `examples_per_step` converts steps per second into examples per second.
  ProgressBar(std::ostream& out, std::string label, std::int64_t total_steps,
              std::int64_t examples_per_step, bool force_terminal = false);
  /// Records that `done` steps are complete, with the running metrics to show.
  void update(std::int64_t done, const std::vector<std::pair<std::string, double>>& metrics);
  /// Ends the line (and prints the final state when nothing was printed since the last update).
  void finish();
  /// Examples per second over the steps seen so far.
  double examples_per_second() const;

 private:
  std::string render(std::int64_t done,
                     const std::vector<std::pair<std::string, double>>& metrics) const;
  std::ostream& out_;
  std::string label_;
  std::int64_t total_, examples_per_step_;
  bool terminal_;
  std::int64_t done_ = 0;
  int last_decile_ = -1;
  bool finished_ = false;
  std::vector<std::pair<std::string, double>> last_metrics_;
  std::chrono::steady_clock::time_point start_;
};

/// "0:56", "1:02:03": a duration in seconds as Python's timedelta prints it, without fractions.
std::string format_duration(double seconds);

/// A table of metrics, one row per epoch (or step), kept in memory and written out whole.
class MetricsLog {
 public:
  explicit MetricsLog(std::vector<std::string> columns);
  /// Appends a row; its size must match the columns (else loom::Error).
  void add(std::vector<double> row);
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<std::vector<double>>& rows() const { return rows_; }
  /// Drops the rows whose `column` value is greater than `value` (a resumed run rewinds its log
  /// to the checkpoint it restored).
  void truncate_after(const std::string& column, double value);
  /// CSV with a header line; written to a temporary file and renamed, so a reader never sees
  /// half a file.
  void write_csv(const std::string& path) const;
  /// Reads a CSV written by write_csv (the columns must match): resuming keeps the history.
  static MetricsLog read_csv(const std::string& path);
  /// An SVG with one panel per group of columns, each drawn as a line over `x_column`.
  void write_svg(const std::string& path, const std::string& x_column,
                 const std::vector<std::vector<std::string>>& panels) const;

 private:
  std::size_t index_of(const std::string& column) const;
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
};

}  // namespace loom::training
