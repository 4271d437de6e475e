// loom::serialization: Flax's msgpack format. Golden values: fixtures written by
// tests/data/make_flax_fixtures.py (Flax's format restated with python3-msgpack + numpy, values
// in closed form), bytes hand-assembled from the msgpack spec, and python3-msgpack decoding
// loom's output (tests/data/flax_decode.py).
#include "loom/serialization.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace ser = loom::serialization;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::throws_error;
namespace fs = std::filesystem;

namespace {

ser::Bytes read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return ser::Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
ser::Bytes fixture(const std::string& name) {
  return read(fs::path(LOOM_TEST_DATA_DIR) / "flax_fixtures" / name);
}
ser::Bytes hex(std::string h) {
  std::erase(h, ' ');
  ser::Bytes b;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    b.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return b;
}
// arange(n) * scale + offset in float32, reshaped.
Array f32(int n, Shape shape, float scale = 0.125f, float offset = 0.f) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = static_cast<float>(i) * scale + offset;
  return Array(v, shape);
}
void expect_equal(const Array& a, const Array& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}
Tree zeros_like(const Tree& t) {
  return loom::tree_map([](const Array& a) { return Array::untouched_zeros(a.shape(), a.dtype()); },
                        t);
}

Tree mnist_like_state() {
  Tree params = {
      {"Conv_0", {{"kernel", f32(18, {3, 3, 1, 2})}, {"bias", Array({0.5f, -0.25f})}}},
      {"Dense_0", {{"kernel", f32(6, {2, 3}, 1.f, -1.f)}, {"bias", Array({0.f, 0.f, 0.f})}}}};
  Tree trace = {{"Conv_0", {{"kernel", f32(18, {3, 3, 1, 2}, 0.5f)}, {"bias", Array({1.f, 2.f})}}},
                {"Dense_0",
                 {{"kernel", Array(std::vector<float>(6, 0.75f), Shape{2, 3})},
                  {"bias", Array({-1.f, 0.f, 1.f})}}}};
  return {{"step", Array::scalar<std::int32_t>(3)},
          {"params", params},
          {"opt_state", {{"0", {{"trace", trace}}}, {"1", Tree()}}}};
}

}  // namespace

TEST(Serialization, FlaxTrainStateFixtureRestoresIntoTarget) {
  const Tree expected = mnist_like_state();
  const Tree got = ser::from_bytes(zeros_like(expected), fixture("train_state.msgpack"));
  ASSERT_TRUE(loom::same_structure(got, expected));
  auto a = loom::tree_leaves_with_path(got), b = loom::tree_leaves_with_path(expected);
  for (std::size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].first.back());
    expect_equal(a[i].second, b[i].second);
  }
  EXPECT_TRUE(got.at("opt_state").at("1").empty());
}

TEST(Serialization, PlainScalarsUntargetedDtypes) {
  const Tree t = ser::msgpack_restore(fixture("plain_scalars.msgpack"));
  expect_equal(t.at("step").leaf(), Array::scalar<std::int32_t>(7));
  expect_equal(t.at("big").leaf(), Array::scalar<std::uint32_t>(3000000000u));
  expect_equal(t.at("neg").leaf(), Array::scalar<std::int32_t>(-5));
  expect_equal(t.at("lr").leaf(), Array::scalar(0.1f));
  expect_equal(t.at("flag").leaf(), Array::scalar(true));
  expect_equal(t.at("f32").leaf(), Array::scalar(2.5f));  // numpy scalar, ext type 3
}

TEST(Serialization, PlainScalarsConvertToTargetDtype) {
  const auto bytes = fixture("plain_scalars.msgpack");
  Tree target = {{"step", Array::scalar(0.0)},   {"big", Array::scalar<std::uint32_t>(0)},
                 {"neg", Array::scalar(0.f)},    {"lr", Array::scalar(0.0)},
                 {"flag", Array::scalar(false)}, {"f32", Array::scalar(0.f)}};
  const Tree t = ser::from_bytes(target, bytes);
  expect_equal(t.at("step").leaf(), Array::scalar(7.0));
  expect_equal(t.at("neg").leaf(), Array::scalar(-5.f));
  expect_equal(t.at("lr").leaf(), Array::scalar(0.1));  // the file's double, unrounded
  target.set("lr", Array::scalar<std::int32_t>(0));
  EXPECT_TRUE(
      throws_error([&] { ser::from_bytes(target, bytes); }, {"\"lr\"", "a float", "int32"}));
  target.set("lr", Array({0.0, 0.0}, DType::float64));
  EXPECT_TRUE(throws_error([&] { ser::from_bytes(target, bytes); }, {"\"lr\"", "(2,)"}));
  target.set("lr", Array::scalar(0.0));
  target.set("big", Array::scalar<std::int32_t>(0));  // 3e9 does not fit int32
  EXPECT_TRUE(throws_error([&] { ser::from_bytes(target, bytes); }, {"\"big\"", "3000000000"}));
}

TEST(Serialization, FlaxDtypesFixture) {
  const Tree t = ser::msgpack_restore(fixture("dtypes.msgpack"));
  expect_equal(t.at("f64").leaf(), Array({1.5, -2.25, 1e300}, DType::float64));
  expect_equal(t.at("i32").leaf(),
               Array(std::vector<std::int32_t>{-1, 2147483647, -2147483647 - 1}, Shape{3}));
  expect_equal(t.at("u32").leaf(), Array(std::vector<std::uint32_t>{0, 4294967295u}, Shape{2}));
  expect_equal(t.at("b").leaf(), Array({true, false, true}));
  EXPECT_EQ(t.at("empty").leaf().shape(), (Shape{0, 3}));
  expect_equal(t.at("zero_d").leaf(), Array::scalar(1.25f));
  expect_equal(t.at("big").leaf(), f32(100, {10, 10}));
}

TEST(Serialization, EveryExtFramingReads) {
  const Tree t = ser::msgpack_restore(fixture("framings.msgpack"));
  for (const char* k : {"fix16", "ext8", "ext16", "ext32"})
    expect_equal(t.at(k).leaf(), Array::scalar(1.25f));
  expect_equal(t.at("odd").leaf(), Array({{3.f}, {-0.5f}}));
  for (int n : {1, 2, 4, 8}) {  // fixext 1/2/4/8 frame fine but cannot hold an ndarray
    const auto b = fixture("fixext" + std::to_string(n) + ".msgpack");
    EXPECT_TRUE(throws_error([&] { ser::msgpack_restore(b); }, {"msgpack_restore", "\"a\""}));
  }
}

TEST(Serialization, ChunkedArraysJoinAndWriteAsFlax) {
  const auto bytes = fixture("chunked.msgpack");  // Flax's _chunk with MAX_CHUNK_SIZE = 16
  const Tree t = ser::msgpack_restore(bytes);
  expect_equal(t.at("emb").leaf(), f32(10, {2, 5}));
  expect_equal(t.at("small").leaf(), f32(2, {2}));
  const std::size_t old = ser::detail::set_max_chunk_size(16);
  const ser::Bytes mine = ser::to_bytes(t);
  ser::detail::set_max_chunk_size(old);
  EXPECT_EQ(mine, bytes);  // same keys in the same order: Flax's bytes exactly
  EXPECT_EQ(ser::to_bytes(t), ser::to_bytes(ser::msgpack_restore(ser::to_bytes(t))));
}

TEST(Serialization, ListsReadAsIndexedDicts) {
  const Tree t = ser::msgpack_restore(fixture("list.msgpack"));
  expect_equal(t.at("layers").at("0").leaf(), f32(2, {2}));
  expect_equal(t.at("layers").at("1").leaf(), f32(3, {3}));
}

TEST(Serialization, UnsupportedValuesNameThePath) {
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(fixture("int64.msgpack")); },
                           {"params/x", "int64", "not a loom dtype"}));
  EXPECT_TRUE(
      throws_error([] { ser::msgpack_restore(fixture("float16.msgpack")); }, {"\"h\"", "float16"}));
  EXPECT_TRUE(
      throws_error([] { ser::msgpack_restore(fixture("complex.msgpack")); }, {"\"z\"", "complex"}));
  EXPECT_TRUE(
      throws_error([] { ser::msgpack_restore(fixture("none.msgpack")); }, {"\"a\"", "nil"}));
}

TEST(Serialization, WritesFlaxsExactBytes) {
  // {"a": float32 1.25}: fixmap 1, fixstr "a", fixext 16 type 1, payload
  // [fixarray 3: fixarray 0 (shape ()), fixstr "float32", bin8 4 bytes 00 00 a0 3f].
  EXPECT_EQ(ser::to_bytes({{"a", Array::scalar(1.25f)}}),
            hex("81 a1 61 d8 01 93 90 a7 666c6f6174333 2 c4 04 0000a03f"));
  // int32 [1, 2] of shape (2,): payload 17 bytes -> ext 8 (c7 11 01).
  EXPECT_EQ(ser::to_bytes(Array(std::vector<std::int32_t>{1, 2}, Shape{2})),
            hex("c7 13 01 93 91 02 a5 696e743332 c4 08 01000000 02000000"));
  // bool (300,) : shape entry as uint16 (cd 01 2c), bin16, ext 16.
  const ser::Bytes b =
      ser::to_bytes(Array(std::vector<std::uint32_t>(300, 1), Shape{300}, DType::bool_));
  EXPECT_EQ(ser::Bytes(b.begin(), b.begin() + 19),
            hex("c8 0139 01 93 91 cd012c a4 626f6f6c c5 012c 0101"));
  EXPECT_EQ(b.size(), 4u + 313u);
  EXPECT_EQ(ser::to_bytes(Tree()), hex("80"));
}

TEST(Serialization, RoundTripsEveryDtypeAndShape) {
  const Tree t = {{"f32", f32(24, {2, 3, 4})},
                  {"f64", Array({1e-300, -0.0, 3.5}, DType::float64)},
                  {"i32", Array(std::vector<std::int32_t>{-7}, Shape{1, 1})},
                  {"u32", Array::scalar<std::uint32_t>(4000000000u)},
                  {"b", Array({{true, false}, {false, true}})},
                  {"empty", Array::empty({0}, DType::float32)},
                  {"nested", {{"deeper", {{"x", f32(3, {3})}}}, {"nothing", Tree()}}}};
  const Tree r = ser::from_bytes(zeros_like(t), ser::to_bytes(t));
  ASSERT_TRUE(loom::same_structure(r, t));
  auto a = loom::tree_leaves(r), b = loom::tree_leaves(t);
  for (std::size_t i = 0; i < a.size(); ++i) expect_equal(a[i], b[i]);
  EXPECT_TRUE(std::signbit(r.at("f64").leaf().to_vector<double>()[1]));
  const Tree u = ser::msgpack_restore(ser::to_bytes(t));
  EXPECT_TRUE(loom::same_structure(u, t));
  // A root leaf, as flax.serialization.to_bytes(np.ndarray).
  expect_equal(ser::msgpack_restore(ser::to_bytes(f32(5, {5}))).leaf(), f32(5, {5}));
}

TEST(Serialization, TargetMismatchesNameThePath) {
  const Tree t = {{"params", {{"Dense_0", {{"kernel", f32(12, {3, 4})}, {"bias", f32(4, {4})}}}}}};
  const auto bytes = ser::to_bytes(t);
  Tree bad = t;
  bad.at("params").at("Dense_0").set("kernel", f32(12, {4, 3}));
  EXPECT_TRUE(
      throws_error([&] { ser::from_bytes(bad, bytes); },
                   {"from_bytes", "params/Dense_0/kernel", "float32 (3, 4)", "float32 (4, 3)"}));
  bad.at("params").at("Dense_0").set("kernel", Array(std::vector<double>(12), Shape{3, 4}));
  EXPECT_TRUE(
      throws_error([&] { ser::from_bytes(bad, bytes); }, {"params/Dense_0/kernel", "float64"}));
  bad = t;
  bad.at("params").at("Dense_0").set("scale", f32(4, {4}));
  EXPECT_TRUE(
      throws_error([&] { ser::from_bytes(bad, bytes); }, {"params/Dense_0", "lacks", "\"scale\""}));
  bad = {{"params", {{"Dense_0", {{"kernel", f32(12, {3, 4})}}}}}};
  EXPECT_TRUE(throws_error([&] { ser::from_bytes(bad, bytes); },
                           {"params/Dense_0", "\"bias\"", "does not have"}));
  bad = {{"params", {{"Dense_0", f32(1, {1})}}}};
  EXPECT_TRUE(
      throws_error([&] { ser::from_bytes(bad, bytes); }, {"params/Dense_0", "a dict with keys"}));
  bad = {{"params", {{"Dense_0", {{"kernel", {{"x", f32(1, {1})}}}, {"bias", f32(4, {4})}}}}}};
  EXPECT_TRUE(throws_error([&] { ser::from_bytes(bad, bytes); },
                           {"params/Dense_0/kernel", "an array float32 (3, 4)"}));
  // from_state_dict: the same checks on Trees.
  EXPECT_TRUE(throws_error([&] { ser::from_state_dict(bad, t); },
                           {"from_state_dict", "params/Dense_0/kernel"}));
  expect_equal(
      ser::from_state_dict(t, ser::to_state_dict(t)).at("params").at("Dense_0").at("bias").leaf(),
      f32(4, {4}));
}

TEST(Serialization, TruncationsAndCorruptionsAreErrors) {
  const auto bytes = ser::to_bytes(mnist_like_state());
  const Tree target = zeros_like(mnist_like_state());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::span<const std::uint8_t> prefix(bytes.data(), n);
    EXPECT_TRUE(throws_error([&] { ser::from_bytes(target, prefix); }, {"from_bytes"})) << n;
    EXPECT_TRUE(throws_error([&] { ser::msgpack_restore(prefix); }, {"msgpack_restore"})) << n;
  }
  int errors = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {  // every byte flipped: an error or a restore
    ser::Bytes c = bytes;
    c[i] ^= 0xff;
    try {
      ser::from_bytes(target, c);
    } catch (const loom::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 50);
  ser::Bytes extra = bytes;
  extra.push_back(0xc0);
  EXPECT_TRUE(throws_error([&] { ser::msgpack_restore(extra); }, {"extra data"}));
}

TEST(Serialization, HostileSizesDoNotAllocate) {
  // map32 of 2^32-1 entries, array32, bin32/ext32 lengths of 4 GiB, in a few bytes each.
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("df ffffffff a1 61 00")); },
                           {"truncated", "4294967295"}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("dd ffffffff 00")); }, {"truncated"}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("c9 ffffffff 01 93")); },
                           {"truncated", "ext payload"}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("81 db ffffffff 61")); },
                           {"truncated", "map key"}));
  // ndarray payload: shape (2^31, 2^31) float32 with a 4-byte buffer; bin32 of 4 GiB.
  EXPECT_TRUE(throws_error(
      [] {
        ser::msgpack_restore(
            hex("c7 1a 01 93 92 ce80000000 ce40000000 a7 666c6f61743332 c4 04 00000000"));
      },
      {"needs", "buffer has 4"}));
  EXPECT_TRUE(throws_error(
      [] {
        ser::msgpack_restore(
            hex("c7 1a 01 93 92 ce80000000 ce80000000 a7 666c6f61743332 c4 04 00000000"));
      },
      {"overflows"}));
  EXPECT_TRUE(throws_error(
      [] { ser::msgpack_restore(hex("c7 0f 01 93 90 a7 666c6f61743332 c6 ffffffff")); },
      {"truncated", "ndarray buffer"}));
  EXPECT_TRUE(throws_error(
      [] { ser::msgpack_restore(hex("c7 10 01 93 99 0102030405060708 09 a4 626f6f6c")); },
      {"rank 9"}));
  EXPECT_TRUE(
      throws_error([] { ser::msgpack_restore(hex("c7 0d 01 93 91 ff a7 666c6f61743332 c4 00")); },
                   {"negative"}));
  // Chunked arrays whose chunks disagree with their shape.
  EXPECT_TRUE(throws_error(
      [] {
        ser::msgpack_restore(hex(
            "83 b9 5f5f6d73677061636b5f6368756e6b65645f61727261795f5f c3 a5 7368617065 81 a1 30 05"
            " a6 6368756e6b73 81 a1 30 c7 11 01 93 91 01 a7 666c6f61743332 c4 04 0000803f"));
      },
      {"shape (5,)", "1 elements"}));
  ser::Bytes many = hex("dd 00300000");  // 3 * 2^20 ints in 3 MiB: over the value limit (2^18)
  many.resize(many.size() + (std::size_t{3} << 20), 0x01);
  EXPECT_TRUE(throws_error([&] { ser::msgpack_restore(many); }, {"more than 262144 values"}));
  ser::Bytes deep(300, 0x81);  // {"a": {"a": ...}} 150 levels deep
  for (std::size_t i = 1; i < deep.size(); i += 2) deep[i] = 0xa0;
  EXPECT_TRUE(throws_error([&] { ser::msgpack_restore(deep); }, {"nesting deeper"}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("82 a1 61 00 a1 61 01")); },
                           {"duplicate", "\"a\""}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("81 01 00")); }, {"must be a string"}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("81 a1 ff 00")); }, {"UTF-8"}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore(hex("81 a1 61 d4 05 00")); },
                           {"\"a\"", "unknown ext type 5"}));
  EXPECT_TRUE(throws_error([] { ser::msgpack_restore({}); }, {"empty input"}));
  // Hostile bool bytes read as true, never as an invalid bool.
  const Tree b = ser::msgpack_restore(hex("c7 0c 01 93 91 02 a4 626f6f6c c4 02 07 00"));
  EXPECT_EQ(b.leaf().to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 0}));
}

TEST(Serialization, CorpusRegression) {
  // Every file of the fuzz corpus (valid files, truncations, framings, past crashers): no crash.
  const fs::path dir = fs::path(LOOM_TEST_DATA_DIR) / ".." / "fuzz" / "corpus";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  const Tree target = zeros_like(mnist_like_state());
  int files = 0, restored = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto bytes = read(e.path());
    ++files;
    try {
      ser::msgpack_restore(bytes);
      ++restored;
    } catch (const loom::Error&) {
    }
    try {
      ser::from_bytes(target, bytes);
    } catch (const loom::Error&) {
    }
  }
  EXPECT_GE(files, 24);
  EXPECT_GE(restored, 5);
}

namespace {
// Runs tests/data/flax_decode.py on bytes; returns its stdout, or nullopt when python3-msgpack
// or numpy is missing.
std::optional<std::string> flax_decode(const ser::Bytes& bytes, const std::string& extra = "") {
  const fs::path file = fs::temp_directory_path() / ("loom_ser_" + std::to_string(::getpid()));
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  const std::string cmd = "cd " + std::string(LOOM_TEST_DATA_DIR) +
                          " && /usr/bin/python3 flax_decode.py " + file.string() + " " + extra +
                          " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (p && std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int rc = p ? ::pclose(p) : -1;
  fs::remove(file);
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) == 77 || WEXITSTATUS(rc) == 127)
    return std::nullopt;
  EXPECT_EQ(WEXITSTATUS(rc), 0) << out;
  return out;
}
}  // namespace

TEST(Serialization, PythonMsgpackDecodesLoomOutputAsFlax) {
  Tree t = mnist_like_state();
  t.at("params").at("Conv_0").set("kernel", f32(3 * 3 * 1 * 32, {3, 3, 1, 32}, 1.f));
  t.set("flags", Array({true, false}));
  t.set("f64", Array({0.5, -1e300}, DType::float64));
  t.set("u32", Array(std::vector<std::uint32_t>{4294967295u}, Shape{1}));
  auto out = flax_decode(ser::to_bytes(t));
  if (!out) GTEST_SKIP() << "python3-msgpack or numpy missing";
  EXPECT_EQ(
      *out,
      "f64 float64 (2,) [0.5, -1e+300]\n"
      "flags bool (2,) [True, False]\n"
      "opt_state/0/trace/Conv_0/bias float32 (2,) [1.0, 2.0]\n"
      "opt_state/0/trace/Conv_0/kernel float32 (3, 3, 1, 2) sum=76.5 first=[0.0, 0.5, 1.0, 1.5]\n"
      "opt_state/0/trace/Dense_0/bias float32 (3,) [-1.0, 0.0, 1.0]\n"
      "opt_state/0/trace/Dense_0/kernel float32 (2, 3) [0.75, 0.75, 0.75, 0.75, 0.75, 0.75]\n"
      "params/Conv_0/bias float32 (2,) [0.5, -0.25]\n"
      // sum of 0..287 = 287 * 288 / 2
      "params/Conv_0/kernel float32 (3, 3, 1, 32) sum=41328.0 first=[0.0, 1.0, 2.0, 3.0]\n"
      "params/Dense_0/bias float32 (3,) [0.0, 0.0, 0.0]\n"
      "params/Dense_0/kernel float32 (2, 3) [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]\n"
      "step int32 () [3]\n"
      "u32 uint32 (1,) [4294967295]\n"
      "reencode_identical True\n");
  // Chunked as Flax chunks (small MAX_CHUNK_SIZE): Flax's _unchunk joins loom's chunks.
  const std::size_t old = ser::detail::set_max_chunk_size(64);
  const auto chunked = ser::to_bytes({{"emb", f32(40, {4, 10}, 1.f)}, {"s", Array::scalar(2.f)}});
  ser::detail::set_max_chunk_size(old);
  EXPECT_EQ(*flax_decode(chunked, "64"),
            "emb float32 (4, 10) sum=780.0 first=[0.0, 1.0, 2.0, 3.0]\n"
            "s float32 () [2.0]\n"
            "reencode_identical True\n");
}
