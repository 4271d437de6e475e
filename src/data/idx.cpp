// IDX reading and writing (plain or gzip through zlib) and the MNIST-layout loader.
#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "loom/data.hpp"

namespace loom::data {

namespace {

std::size_t elem_size(IdxType t) {
  switch (t) {
    case IdxType::ubyte:
    case IdxType::sbyte:
      return 1;
    case IdxType::int16:
      return 2;
    case IdxType::int32:
    case IdxType::float32:
      return 4;
    case IdxType::float64:
      return 8;
  }
  return 0;
}

bool known_type(std::uint8_t t) {
  return t == 0x08 || t == 0x09 || t == 0x0B || t == 0x0C || t == 0x0D || t == 0x0E;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("read_idx(\"" + path + "\"): " + what);
}

// Header plus data bytes that an IDX header (magic 00 00 type ndims, then ndims big-endian
// uint32 dims) describes; SIZE_MAX when the product overflows or the type is unknown (the
// caller's checks then name the problem).
std::size_t expected_size(const std::vector<std::uint8_t>& h) {
  static const std::size_t kItem[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 2, 4, 4, 8, 0};
  const std::size_t item = h[2] < 16 ? kItem[h[2]] : 0;
  const std::size_t nd = h[3];
  std::size_t total = item == 0 ? SIZE_MAX : item;
  for (std::size_t d = 0; d < nd && total != SIZE_MAX; ++d) {
    const std::size_t dim = (std::size_t(h[4 + 4 * d]) << 24) | (std::size_t(h[5 + 4 * d]) << 16) |
                            (std::size_t(h[6 + 4 * d]) << 8) | std::size_t(h[7 + 4 * d]);
    if (__builtin_mul_overflow(total, dim, &total)) total = SIZE_MAX;
  }
  if (total == SIZE_MAX || __builtin_add_overflow(total, 4 + 4 * nd, &total)) return SIZE_MAX;
  return total == 0 ? 4 + 4 * nd : total;
}

// The whole (decompressed) content; gzread passes a non-gzip file through unchanged.
std::vector<std::uint8_t> read_all(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail(path, std::filesystem::exists(path, ec)
                   ? "not a regular file"
                   : "no such file (expected an IDX file, plain or .gz)");
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 20);
  std::size_t expected = 0;  // header + data bytes, once the header has been read
  for (;;) {
    const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      fail(path, "corrupt or unreadable gzip stream (" + msg + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
    // Once the header is in, never hold more than it describes: a small hostile .gz must not
    // inflate to gigabytes before the size check (read_idx reports the mismatch precisely).
    if (expected == 0 && out.size() >= 4 && (out[0] != 0 || out[1] != 0 || !known_type(out[2]))) {
      gzclose(f);  // not an IDX header: read_idx names the bad magic from these bytes
      return out;
    }
    if (expected == 0 && out.size() >= 4 && out.size() >= 4 + 4 * std::size_t(out[3])) {
      expected = expected_size(out);
    }
    if (expected != 0 && out.size() > expected + chunk.size()) {  // one chunk of slack keeps
                                                                  // read_idx's exact message
      gzclose(f);
      fail(path, "holds more data than its header's dims describe (" + std::to_string(expected) +
                     " bytes)");
    }
  }
  // A truncated gzip member reads as a short stream; gzclose_r reports it as Z_BUF_ERROR.
  const int rc = gzclose(f);
  if (rc == Z_BUF_ERROR) fail(path, "truncated gzip stream");
  if (rc != Z_OK) fail(path, "error closing the gzip stream (code " + std::to_string(rc) + ")");
  return out;
}

template <typename T>
void to_host(std::uint8_t* p, std::size_t n) {
  if constexpr (sizeof(T) > 1) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint8_t* e = p + i * sizeof(T);
      for (std::size_t a = 0, b = sizeof(T) - 1; a < b; ++a, --b) std::swap(e[a], e[b]);
    }
  }
}

void swap_bytes(IdxType t, std::vector<std::uint8_t>& data) {
  const std::size_t es = elem_size(t);
  if (es == 1) return;
  const std::size_t n = data.size() / es;
  if (es == 2) to_host<std::uint16_t>(data.data(), n);
  if (es == 4) to_host<std::uint32_t>(data.data(), n);
  if (es == 8) to_host<std::uint64_t>(data.data(), n);
}

std::string find_file(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path plain = fs::path(dir) / name, gz = fs::path(dir) / (name + ".gz");
  if (fs::exists(plain, ec)) return plain.string();
  if (fs::exists(gz, ec)) return gz.string();
  throw Error("load_mnist: missing \"" + plain.string() + "\" (or \"" + gz.string() +
              "\"); expected the four IDX files train-images-idx3-ubyte, "
              "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte in " +
              dir);
}

ImageDataset load_split(const std::string& dir, const std::string& prefix) {
  const std::string ip = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string lp = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxFile im = read_idx(ip), lb = read_idx(lp);
  if (im.type != IdxType::ubyte || im.dims.size() != 3) {
    throw Error("load_mnist: \"" + ip + "\" must hold ubyte images of shape (n, rows, cols), got " +
                std::to_string(im.dims.size()) + " dims of type 0x" +
                std::to_string(static_cast<int>(im.type)));
  }
  if (lb.type != IdxType::ubyte || lb.dims.size() != 1) {
    throw Error("load_mnist: \"" + lp + "\" must hold ubyte labels of shape (n,), got " +
                std::to_string(lb.dims.size()) + " dims");
  }
  if (lb.dims[0] != im.dims[0]) {
    throw Error("load_mnist: \"" + ip + "\" has " + std::to_string(im.dims[0]) + " images but \"" +
                lp + "\" has " + std::to_string(lb.dims[0]) + " labels");
  }
  ImageDataset ds;
  ds.size = im.dims[0];
  ds.rows = im.dims[1];
  ds.cols = im.dims[2];
  ds.images = std::move(im.data);
  ds.labels.assign(lb.data.begin(), lb.data.end());
  return ds;
}

}  // namespace

IdxFile read_idx(const std::string& path) {
  std::vector<std::uint8_t> bytes = read_all(path);
  if (bytes.size() < 4) {
    fail(path, "too short for the IDX magic number (" + std::to_string(bytes.size()) +
                   " bytes; expected 00 00 <type> <ndims>)");
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    fail(path, "bad magic number: the first two bytes must be 0 (got " + std::to_string(bytes[0]) +
                   ", " + std::to_string(bytes[1]) + "); not an IDX file");
  }
  if (!known_type(bytes[2])) {
    fail(path, "unknown element type 0x" + std::to_string(bytes[2] / 16) +
                   std::to_string(bytes[2] % 16) +
                   " (expected 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E "
                   "double)");
  }
  IdxFile f;
  f.type = static_cast<IdxType>(bytes[2]);
  const std::size_t nd = bytes[3];
  if (nd == 0) fail(path, "zero dimensions (expected at least one)");
  const std::size_t header = 4 + 4 * nd;
  if (bytes.size() < header) {
    fail(path, "truncated header: " + std::to_string(nd) + " dims need " + std::to_string(header) +
                   " bytes, the file has " + std::to_string(bytes.size()));
  }
  const std::size_t es = elem_size(f.type);
  std::uint64_t count = 1;
  bool saturated = false;
  const std::uint64_t avail = bytes.size() - header;
  for (std::size_t i = 0; i < nd; ++i) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * i;
    const std::uint64_t d = (std::uint64_t(p[0]) << 24) | (std::uint64_t(p[1]) << 16) |
                            (std::uint64_t(p[2]) << 8) | std::uint64_t(p[3]);
    f.dims.push_back(static_cast<std::int64_t>(d));
    // Saturate: any product beyond the bytes present is a size mismatch anyway.
    if (d != 0 && count > (avail / es + 1) / d) {
      saturated = true;
      count = avail / es + 1;
    } else {
      count *= d;
    }
  }
  std::string dims_str;
  for (auto d : f.dims) dims_str += (dims_str.empty() ? "" : ", ") + std::to_string(d);
  if (count * es != avail) {
    fail(path, "data size mismatch: dims (" + dims_str + ") of " + std::to_string(es) +
                   "-byte elements need " +
                   (saturated ? std::string("more than ") + std::to_string(avail)
                              : std::to_string(count * es)) +
                   " bytes after the header, the file has " + std::to_string(avail));
  }
  f.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  swap_bytes(f.type, f.data);
  return f;
}

void write_idx(const std::string& path, const IdxFile& file, bool gzip) {
  if (file.dims.empty() || file.dims.size() > 255) {
    throw Error("write_idx(\"" + path + "\"): expected 1 to 255 dims, got " +
                std::to_string(file.dims.size()));
  }
  std::uint64_t count = 1;
  std::vector<std::uint8_t> out = {0, 0, static_cast<std::uint8_t>(file.type),
                                   static_cast<std::uint8_t>(file.dims.size())};
  for (auto d : file.dims) {
    if (d < 0 || d > 0xFFFFFFFFll) {
      throw Error("write_idx(\"" + path + "\"): dim " + std::to_string(d) +
                  " does not fit an unsigned 32-bit IDX dim");
    }
    count *= static_cast<std::uint64_t>(d);
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  }
  if (count * elem_size(file.type) != file.data.size()) {
    throw Error("write_idx(\"" + path + "\"): dims hold " + std::to_string(count) +
                " elements but data has " + std::to_string(file.data.size()) + " bytes");
  }
  std::vector<std::uint8_t> body = file.data;
  swap_bytes(file.type, body);  // host -> big-endian (its own inverse)
  out.insert(out.end(), body.begin(), body.end());
  gzFile f = gzopen(path.c_str(), gzip ? "wb" : "wbT");
  if (!f) throw Error("write_idx(\"" + path + "\"): cannot open for writing");
  const bool ok =
      out.empty() || gzwrite(f, out.data(), static_cast<unsigned>(out.size())) == int(out.size());
  if (gzclose(f) != Z_OK || !ok) throw Error("write_idx(\"" + path + "\"): write failed");
}

Array IdxFile::to_array() const {
  Shape shape{std::vector<std::int64_t>(dims)};
  const std::size_t n = data.size() / elem_size(type);
  auto load = [&]<typename T>() {
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), data.data(), n * sizeof(T));
    return v;
  };
  switch (type) {
    case IdxType::ubyte: {
      std::vector<std::uint32_t> v(data.begin(), data.end());
      return Array(v, shape, DType::uint32);
    }
    case IdxType::sbyte: {
      std::vector<std::int32_t> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int8_t>(data[i]);
      return Array(v, shape, DType::int32);
    }
    case IdxType::int16: {
      auto s = load.operator()<std::int16_t>();
      return Array(std::vector<std::int32_t>(s.begin(), s.end()), shape, DType::int32);
    }
    case IdxType::int32:
      return Array(load.operator()<std::int32_t>(), shape, DType::int32);
    case IdxType::float32:
      return Array(load.operator()<float>(), shape, DType::float32);
    case IdxType::float64:
      return Array(load.operator()<double>(), shape, DType::float64);
  }
  throw Error("IdxFile.to_array: unknown type");
}

MnistDataset load_mnist(const std::string& dir) {
  return {load_split(dir, "train"), load_split(dir, "t10k")};
}

}  // namespace loom::data
