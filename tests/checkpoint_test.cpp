// save_checkpoint / restore_checkpoint / latest_checkpoint, after flax/training/checkpoints.py:
// file names, natural step order, keep, overwrite, Flax's "no checkpoint: return the target",
// and a process SIGKILLed in the middle of a save leaving the previous checkpoint intact.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "loom/loom.hpp"
#include "loom/serialization.hpp"
#include "test_util.hpp"

namespace ser = loom::serialization;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::throws_error;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("loom_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// {"step": step, "params": {"w": full(n, value)}}
Tree state(std::int32_t step, float value, std::int64_t n = 4) {
  return {
      {"step", Array::scalar(step)},
      {"params", {{"w", Array(std::vector<float>(static_cast<std::size_t>(n), value), Shape{n})}}}};
}
std::int32_t step_of(const Tree& t) {
  return t.at("step").leaf().item<std::int32_t>();
}
float w_of(const Tree& t) {
  return t.at("params").at("w").leaf().to_vector<float>().front();
}

std::vector<std::string> names(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// The file holds exactly serialization::to_bytes of the target (whose Flax compatibility the
// fixture and python3-msgpack tests in serialization_test check).
TEST(Checkpoint, SaveWritesFlaxNamedFileWithTheSerializedBytes) {
  TempDir d;
  const fs::path p = ser::save_checkpoint(d.path, state(5, 1.5f), 5);
  EXPECT_EQ(p, d.path / "checkpoint_5");
  EXPECT_EQ(names(d.path), std::vector<std::string>{"checkpoint_5"});  // no temp file left
  std::ifstream f(p, std::ios::binary);
  ser::Bytes bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, ser::to_bytes(state(5, 1.5f)));
  const Tree r = ser::restore_checkpoint(d.path, state(0, 0.f));
  EXPECT_EQ(step_of(r), 5);
  EXPECT_EQ(w_of(r), 1.5f);
  EXPECT_EQ(w_of(ser::restore_checkpoint(p, state(0, 0.f))), 1.5f);  // a file path works too
}

TEST(Checkpoint, KeepAndNaturalStepOrder) {
  TempDir d;
  for (int s : {1, 2, 9, 10}) ser::save_checkpoint(d.path, state(s, float(s)), s, "checkpoint_", 2);
  EXPECT_EQ(names(d.path), (std::vector<std::string>{"checkpoint_10", "checkpoint_9"}));
  EXPECT_EQ(ser::available_steps(d.path), (std::vector<std::int64_t>{9, 10}));
  EXPECT_EQ(*ser::latest_checkpoint(d.path), d.path / "checkpoint_10");  // 10 > 9, not "10" < "9"
  EXPECT_EQ(step_of(ser::restore_checkpoint(d.path, state(0, 0.f))), 10);
  EXPECT_EQ(step_of(ser::restore_checkpoint(d.path, state(0, 0.f), 9)), 9);
  // Other prefixes, a stale temp file and foreign names are not checkpoints.
  std::ofstream(d.path / "checkpoint_tmp") << "partial";
  std::ofstream(d.path / "checkpoint_11.bak") << "x";
  EXPECT_EQ(*ser::latest_checkpoint(d.path), d.path / "checkpoint_10");
  ser::save_checkpoint(d.path, state(3, 3.f), 3, "other_");
  EXPECT_EQ(step_of(ser::restore_checkpoint(d.path, state(0, 0.f), std::nullopt, "other_")), 3);
  EXPECT_TRUE(fs::exists(d.path / "checkpoint_10"));  // keep counts per prefix
}

TEST(Checkpoint, MissingDirectoryOrCheckpointReturnsTargetAsFlax) {
  TempDir d;
  const Tree target = state(42, 4.f);
  EXPECT_EQ(step_of(ser::restore_checkpoint(d.path / "nope", target)), 42);
  fs::create_directories(d.path);
  EXPECT_EQ(step_of(ser::restore_checkpoint(d.path, target)), 42);
  EXPECT_FALSE(ser::latest_checkpoint(d.path).has_value());
  EXPECT_TRUE(throws_error([&] { ser::restore_checkpoint(d.path, target, 7); },
                           {"Matching checkpoint not found", "checkpoint_7"}));
}

TEST(Checkpoint, OverwriteRules) {
  TempDir d;
  ser::save_checkpoint(d.path, state(5, 5.f), 5, "checkpoint_", 3);
  ser::save_checkpoint(d.path, state(6, 6.f), 6, "checkpoint_", 3);
  EXPECT_TRUE(throws_error(
      [&] { ser::save_checkpoint(d.path, state(6, 0.f), 6, "checkpoint_", 3); },
      {"InvalidCheckpointError", "outdated checkpoint at step: \"6\"", "checkpoint_6"}));
  EXPECT_TRUE(
      throws_error([&] { ser::save_checkpoint(d.path, state(4, 0.f), 4, "checkpoint_", 3); },
                   {"InvalidCheckpointError", "\"4\""}));
  EXPECT_THROW(ser::save_checkpoint(d.path, state(4, 0.f), 4), ser::InvalidCheckpointError);
  // overwrite: the same step is replaced, newer ones removed (Flax's _remove_invalid_ckpts).
  ser::save_checkpoint(d.path, state(5, 50.f), 5, "checkpoint_", 3, true);
  EXPECT_EQ(names(d.path), std::vector<std::string>{"checkpoint_5"});
  EXPECT_EQ(w_of(ser::restore_checkpoint(d.path, state(0, 0.f))), 50.f);
  EXPECT_TRUE(throws_error(
      [&] { ser::save_checkpoint(d.path, state(7, 0.f), 7, "checkpoint_", 0); }, {"keep"}));
}

TEST(Checkpoint, DamagedOrMismatchedFilesAreErrorsNamingTheFile) {
  TempDir d;
  const fs::path p = ser::save_checkpoint(d.path, state(1, 1.f), 1);
  fs::resize_file(p, fs::file_size(p) - 3);
  EXPECT_TRUE(throws_error([&] { ser::restore_checkpoint(d.path, state(0, 0.f)); },
                           {"restore_checkpoint", "checkpoint_1", "truncated"}));
  ser::save_checkpoint(d.path, state(2, 1.f, 8), 2);
  EXPECT_TRUE(throws_error([&] { ser::restore_checkpoint(d.path, state(0, 0.f)); },
                           {"checkpoint_2", "params/w", "(8,)", "(4,)"}));
}

namespace {
void kill_self(std::size_t bytes_written) {
  if (bytes_written >= (std::size_t{1} << 20)) ::raise(SIGKILL);  // after the first 1 MiB block
}
}  // namespace

TEST(Checkpoint, KillDuringSaveKeepsThePreviousCheckpoint) {
  TempDir d;
  ser::save_checkpoint(d.path, state(1, 1.f), 1);
  const Tree big = state(2, 2.f, std::int64_t{2} << 20);  // 8 MiB of float32
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ser::detail::set_checkpoint_write_hook(&kill_self);
    ser::save_checkpoint(d.path, big, 2);
    ::_exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_TRUE(fs::exists(d.path / "checkpoint_tmp"));  // the torn write, under the temp name
  EXPECT_FALSE(fs::exists(d.path / "checkpoint_2"));
  const Tree r = ser::restore_checkpoint(d.path, state(0, 0.f));
  EXPECT_EQ(step_of(r), 1);
  EXPECT_EQ(w_of(r), 1.f);
  // The next save goes through and replaces the stale temp file.
  ser::save_checkpoint(d.path, big, 2);
  EXPECT_EQ(names(d.path), std::vector<std::string>{"checkpoint_2"});
  EXPECT_EQ(w_of(ser::restore_checkpoint(d.path, state(0, 0.f, std::int64_t{2} << 20))), 2.f);
}

TEST(Checkpoint, KillAtARandomMomentLeavesAConsistentCheckpoint) {
  TempDir d;
  constexpr std::int64_t n = std::int64_t{1} << 20;  // 4 MiB per save
  ser::save_checkpoint(d.path, state(0, 0.f, n), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (std::int32_t s = 1;; ++s) ser::save_checkpoint(d.path, state(s, float(s), n), s);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const Tree r = ser::restore_checkpoint(d.path, state(0, 0.f, n));
  const auto w = r.at("params").at("w").leaf().to_vector<float>();
  EXPECT_EQ(w.front(), float(step_of(r)));
  EXPECT_EQ(w.back(), float(step_of(r)));  // the whole file is one save's
  EXPECT_EQ(*ser::latest_checkpoint(d.path), d.path / ("checkpoint_" + std::to_string(step_of(r))));
}
