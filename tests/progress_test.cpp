// loom::training's progress bar and metrics log: plain-line output off a terminal, durations,
// CSV round trip, SVG structure, and errors.
#include "loom/training/progress.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.hpp"

namespace training = loom::training;
using loom::testing::throws_error;

namespace {

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

TEST(FormatDuration, AsPythonTimedelta) {
  EXPECT_EQ(training::format_duration(0), "0:00");
  EXPECT_EQ(training::format_duration(56.4), "0:56");
  EXPECT_EQ(training::format_duration(62), "1:02");
  EXPECT_EQ(training::format_duration(3723), "1:02:03");
  EXPECT_EQ(training::format_duration(-1), "?");
}

TEST(ProgressBar, PlainLinesAtEveryTenthOffATerminal) {
  std::ostringstream out;
  training::ProgressBar bar(out, "epoch 1", 20, 128);
  for (int i = 1; i <= 20; ++i) bar.update(i, {{"loss", 0.5}, {"accuracy", 0.25}});
  bar.finish();
  const std::string text = out.str();
  EXPECT_EQ(text.find('\r'), std::string::npos);  // no redrawing into a file
  // deciles 0..9 (steps 1, 2, 4, ..., 18) and the final line: 10 + 1 lines.
  EXPECT_EQ(count(text, "\n"), 11u) << text;
  EXPECT_NE(text.find("epoch 1 [========================] 20/20  loss 0.5000  accuracy 0.2500"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ex/s"), std::string::npos);
}

TEST(ProgressBar, RedrawsOnATerminal) {
  std::ostringstream out;
  training::ProgressBar bar(out, "e", 4, 1, /*force_terminal=*/true);
  bar.update(1, {});
  bar.update(2, {});
  bar.finish();
  EXPECT_EQ(count(out.str(), "\r\033[K"), 3u);
  EXPECT_NE(out.str().find("ETA"), std::string::npos);
  EXPECT_EQ(count(out.str(), "\n"), 1u);
}

TEST(MetricsLog, CsvRoundTripAndTruncate) {
  training::MetricsLog log({"epoch", "loss"});
  log.add({1, 0.5});
  log.add({2, 0.25});
  log.add({3, 0.125});
  const std::string path = ::testing::TempDir() + "/loom_metrics.csv";
  log.write_csv(path);
  EXPECT_EQ(read(path), "epoch,loss\n1,0.5\n2,0.25\n3,0.125\n");
  training::MetricsLog back = training::MetricsLog::read_csv(path);
  EXPECT_EQ(back.rows(), log.rows());
  back.truncate_after("epoch", 2);
  EXPECT_EQ(back.rows().size(), 2u);
  std::remove(path.c_str());
}

TEST(MetricsLog, SvgHasOnePolylinePerSeriesAndPanel) {
  training::MetricsLog log({"epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy"});
  log.add({1, 0.6, 0.5, 0.78, 0.81});
  log.add({2, 0.4, 0.42, 0.85, 0.86});
  const std::string path = ::testing::TempDir() + "/loom_metrics.svg";
  log.write_svg(path, "epoch", {{"train_loss", "test_loss"}, {"train_accuracy", "test_accuracy"}});
  const std::string svg = read(path);
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_EQ(count(svg, "<polyline"), 4u);
  EXPECT_EQ(count(svg, "<circle"), 8u);
  EXPECT_NE(svg.find("train_loss / test_loss"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  std::remove(path.c_str());
}

TEST(MetricsLog, SvgOfConstantHugeOrSinglePointSeriesTerminates) {
  // A constant series above 1e7 once made the tick loop's step smaller than one ulp.
  training::MetricsLog log({"epoch", "loss"});
  log.add({1, 3e9});
  const std::string path = ::testing::TempDir() + "/loom_const.svg";
  log.write_svg(path, "epoch", {{"loss"}});
  log.add({2, 3e9});
  log.write_svg(path, "epoch", {{"loss"}});
  const std::string svg = read(path);
  EXPECT_EQ(count(svg, "<polyline"), 1u);
  EXPECT_LE(count(svg, "<line"), 60u);  // a bounded number of ticks and legend lines
  std::remove(path.c_str());
}

TEST(MetricsLog, Errors) {
  training::MetricsLog log({"a", "b"});
  EXPECT_TRUE(throws_error([&] { log.add({1}); }, {"a row of 1 values for 2 columns"}));
  EXPECT_TRUE(throws_error([&] { log.truncate_after("c", 1); }, {"no column \"c\""}));
  const std::string path = ::testing::TempDir() + "/loom_bad.csv";
  {
    std::ofstream f(path);
    f << "a,b\n1,x\n";
  }
  EXPECT_TRUE(throws_error([&] { training::MetricsLog::read_csv(path); },
                           {"line 2", "\"x\" is not a number"}));
  std::remove(path.c_str());
  EXPECT_TRUE(
      throws_error([] { training::MetricsLog::read_csv("/nonexistent/m.csv"); }, {"cannot open"}));
}

}  // namespace
