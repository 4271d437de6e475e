// save_checkpoint / restore_checkpoint / latest_checkpoint (flax/training/checkpoints.py), with
// an atomic write: temp file in the same directory, fsync, rename, fsync of the directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "loom/serialization.hpp"

namespace fs = std::filesystem;

namespace loom::serialization {
namespace {

void (*g_write_hook)(std::size_t) = nullptr;

[[noreturn]] void sys_fail(const char* op, const fs::path& p, const std::string& what, int err) {
  throw Error(std::string(op) + ": " + what + " \"" + p.string() + "\": " + std::strerror(err));
}

// The checkpoints in `dir`: files named <prefix><non-negative integer>, by ascending step.
std::vector<std::pair<std::int64_t, fs::path>> list_checkpoints(const fs::path& dir,
                                                                const std::string& prefix) {
  std::vector<std::pair<std::int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    if (*first == '-' || *first == '+') continue;
    std::int64_t step = 0;
    auto [ptr, err] = std::from_chars(first, last, step);
    if (err != std::errc() || ptr != last) continue;
    out.emplace_back(step, entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void write_all(int fd, const Bytes& bytes, const fs::path& path) {
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const std::size_t n = std::min(kBlock, bytes.size() - done);
    const ssize_t w = ::write(fd, bytes.data() + done, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      sys_fail("save_checkpoint", path, "cannot write", errno);
    }
    done += static_cast<std::size_t>(w);
    if (g_write_hook) g_write_hook(done);
  }
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) sys_fail("save_checkpoint", dir, "cannot open directory", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) sys_fail("save_checkpoint", dir, "cannot fsync directory", err);
}

Bytes read_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) sys_fail("restore_checkpoint", path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    if (err) sys_fail("restore_checkpoint", path, "cannot stat", err);
    throw Error("restore_checkpoint: \"" + path.string() + "\" is not a regular file");
  }
  Bytes bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t r = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int err = r < 0 ? errno : EIO;
      ::close(fd);
      sys_fail("restore_checkpoint", path, "cannot read", err);
    }
    done += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return bytes;
}

}  // namespace

namespace detail {
void set_checkpoint_write_hook(void (*hook)(std::size_t)) {
  g_write_hook = hook;
}
}  // namespace detail

std::vector<std::int64_t> available_steps(const fs::path& dir, const std::string& prefix) {
  std::vector<std::int64_t> steps;
  for (const auto& [s, p] : list_checkpoints(dir, prefix)) steps.push_back(s);
  return steps;
}

std::optional<fs::path> latest_checkpoint(const fs::path& dir, const std::string& prefix) {
  auto all = list_checkpoints(dir, prefix);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

fs::path save_checkpoint(const fs::path& dir, const Tree& target, std::int64_t step,
                         const std::string& prefix, int keep, bool overwrite) {
  if (keep < 1) throw Error("save_checkpoint: keep must be >= 1, got " + std::to_string(keep));
  if (step < 0) throw Error("save_checkpoint: step must be >= 0, got " + std::to_string(step));
  if (prefix.empty() || prefix.find('/') != std::string::npos)
    throw Error("save_checkpoint: prefix \"" + prefix + "\" must be a non-empty file name part");
  const fs::path path = dir / (prefix + std::to_string(step));
  const fs::path tmp = dir / (prefix + "tmp");
  auto existing = list_checkpoints(dir, prefix);
  if (!overwrite && !existing.empty() && existing.back().first >= step)
    throw InvalidCheckpointError(path.string(), step);

  const Bytes bytes = to_bytes(target);  // encode before touching the directory
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("save_checkpoint: cannot create \"" + dir.string() + "\": " + ec.message());

  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) sys_fail("save_checkpoint", tmp, "cannot create", errno);
  try {
    write_all(fd, bytes, tmp);
    if (::fsync(fd) != 0) sys_fail("save_checkpoint", tmp, "cannot fsync", errno);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    sys_fail("save_checkpoint", tmp, "cannot close", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    sys_fail("save_checkpoint", path, "cannot rename the temp file to", err);
  }
  fsync_dir(dir);

  // As Flax's _remove_invalid_ckpts: with overwrite, newer checkpoints go; then all but `keep`.
  auto all = list_checkpoints(dir, prefix);
  std::vector<fs::path> remove;
  std::vector<fs::path> kept;
  for (const auto& [s, p] : all) {
    if (overwrite && s > step)
      remove.push_back(p);
    else
      kept.push_back(p);
  }
  if (kept.size() > static_cast<std::size_t>(keep))
    remove.insert(remove.end(), kept.begin(), kept.end() - keep);
  for (const auto& p : remove) fs::remove(p, ec);  // best effort, as Flax's _safe_remove
  if (!remove.empty()) fsync_dir(dir);
  return path;
}

Tree restore_checkpoint(const fs::path& dir, const Tree& target, std::optional<std::int64_t> step,
                        const std::string& prefix) {
  fs::path path;
  std::error_code ec;
  if (step) {
    path = dir / (prefix + std::to_string(*step));
    if (!fs::exists(path, ec)) throw Error("Matching checkpoint not found: " + path.string());
  } else {
    if (!fs::exists(dir, ec)) return target;  // Flax: no directory yet, nothing to restore
    if (fs::is_directory(dir, ec)) {
      auto latest = latest_checkpoint(dir, prefix);
      if (!latest) return target;
      path = *latest;
    } else {
      path = dir;
    }
  }
  const Bytes bytes = read_file(path);
  try {
    return from_bytes(target, bytes);
  } catch (const Error& e) {
    throw Error("restore_checkpoint: \"" + path.string() + "\": " + e.what());
  }
}

}  // namespace loom::serialization
