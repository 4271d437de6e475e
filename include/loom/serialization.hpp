// loom::serialization: Flax's msgpack state-dict format (flax/serialization.py) and its
// checkpoint files (flax/training/checkpoints.py), byte-compatible with Flax in both directions.
//
//   std::vector<std::uint8_t> bytes = loom::serialization::to_bytes(variables);
//   loom::Tree restored = loom::serialization::from_bytes(variables, bytes);   // target-driven
//   loom::Tree anything = loom::serialization::msgpack_restore(bytes);         // untargeted
//
//   namespace ser = loom::serialization;
//   ser::save_checkpoint("/tmp/work", state, /*step=*/100, "checkpoint_", /*keep=*/3);
//   loom::Tree resumed = ser::restore_checkpoint("/tmp/work", state);  // newest, or `state`
//
// The format (what Flax writes and reads):
//  * a dict is a msgpack map with string keys (loom writes them in sorted order; Flax in
//    insertion order; readers do not care). Python lists/tuples are maps "0", "1", ...
//  * an array leaf is ext type 1 whose payload is msgpack [shape, dtype name, raw
//    little-endian C-order bytes], e.g. [[3, 4], "float32", <48 bytes>]. Ext type 3 (a numpy
//    scalar) has the same payload and reads the same. Ext type 2 (Python complex) and complex
//    dtypes are refused: loom has no complex dtype. On write loom picks the framing Python's
//    msgpack picks (fixext 1/2/4/8/16 for those exact lengths, else ext 8/16/32); on read every
//    framing is accepted.
//  * an array over 2^30 bytes is split as Flax's _chunk does: a map {"__msgpack_chunked_array__":
//    true, "shape": {"0": d0, ...}, "chunks": {"0": <1-d array>, ...}}, each chunk of
//    2^30 / itemsize elements; such maps are joined back on read.
//  * plain msgpack values (what Flax writes for Python ints/floats/bools, e.g. TrainState.step
//    before the first jitted update) read as 0-d arrays: untargeted, an int becomes int32 (uint32
//    when it only fits there; larger is an error), a float float32 and a bool bool, as
//    jnp.asarray gives with x64 off; restoring into a 0-d target leaf converts a plain int to
//    the target's int32/uint32/float32/float64 dtype when representable, a plain float to the
//    target's float32/float64, a bool only to bool.
//  * dtypes: float32, float64, int32, uint32, bool. Any other dtype in a file (int64, float16,
//    bfloat16, complex64, ...) is a loom::Error naming the path and the dtype.
//
// Where loom is stricter than Flax (all to make a bad restore an error, not a surprise):
//  * from_state_dict/from_bytes refuse extra keys (Flax ignores them), a leaf where the target
//    has a dict and the reverse, and a shape or dtype other than the target leaf's (Flax
//    returns whatever the file holds). Every message names the path, e.g.
//      from_bytes: at "params/Dense_0/kernel": the state has float32 (3, 4), the target
//      float32 (4, 3)
//  * duplicate map keys, non-string keys, nil, strings or binaries as values, invalid UTF-8 in
//    keys, unknown ext codes and bytes after the top-level object are errors.
//  * hostile input: every length is checked against the remaining input before anything is
//    allocated, nesting is limited to 128 levels and a file to 2^18 values (dicts, arrays,
//    numbers: what decoding costs beyond the array bytes is linear and capped), and a restore
//    builds the whole new tree before it returns (a failed restore never leaves a half-restored
//    result).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loom/core/errors.hpp"
#include "loom/tree.hpp"

namespace loom::serialization {

using Bytes = std::vector<std::uint8_t>;

/// The state dict of a Tree: the tree itself (Trees are already dicts of string keys).
/// TrainState and other structures provide their own to_state_dict returning a Tree.
///   loom::Tree sd = loom::serialization::to_state_dict(params);
Tree to_state_dict(const Tree& target);
/// Restores `target`'s structure from `state`: same keys at every level, same leaf shapes and
/// dtypes (plain scalars converted as described above). Throws loom::Error naming the path.
///   loom::Tree p = loom::serialization::from_state_dict(params, loaded);
Tree from_state_dict(const Tree& target, const Tree& state);

/// Encodes a tree in Flax's msgpack format (flax.serialization.msgpack_serialize).
///   loom::serialization::Bytes b = loom::serialization::msgpack_serialize(params);
Bytes msgpack_serialize(const Tree& tree);
/// Decodes Flax's msgpack format without a target (flax.serialization.msgpack_restore).
///   loom::Tree t = loom::serialization::msgpack_restore(b);
Tree msgpack_restore(std::span<const std::uint8_t> bytes);

/// flax.serialization.to_bytes: msgpack_serialize(to_state_dict(target)).
///   auto bytes = loom::serialization::to_bytes(variables);
Bytes to_bytes(const Tree& target);
/// flax.serialization.from_bytes: decodes and restores into `target`'s structure.
///   loom::Tree v = loom::serialization::from_bytes(variables, bytes);
Tree from_bytes(const Tree& target, std::span<const std::uint8_t> bytes);

/// flax.errors.InvalidCheckpointError: saving at a step that exists, or below a newer one.
class InvalidCheckpointError : public core::FlaxError {
 public:
  InvalidCheckpointError(const std::string& path, std::int64_t step)
      : core::FlaxError("InvalidCheckpointError",
                        "Trying to save an outdated checkpoint at step: \"" + std::to_string(step) +
                            "\" and path: \"" + path + "\".") {}
};

/// flax.training.checkpoints.save_checkpoint: writes `<dir>/<prefix><step>` and returns its path.
/// The bytes go to `<dir>/<prefix>tmp` (the temp name Flax uses and skips), which is fsynced,
/// renamed over the final name and the directory fsynced: a crash or kill at any moment leaves
/// either the old set of checkpoints or the new one, never a torn file under a checkpoint name.
/// Then all but the newest `keep` (>= 1) checkpoints are removed. Without `overwrite`, a
/// checkpoint at `step` or a newer one is an InvalidCheckpointError; with it, the one at `step`
/// is replaced and newer ones are removed (as Flax). Creates `dir` when missing.
/// Steps are the integers after the prefix, ordered numerically (checkpoint_9 < checkpoint_10,
/// Flax's natural sort); files named otherwise are ignored.
///   loom::serialization::save_checkpoint(workdir, state, step, "checkpoint_", 3);
std::filesystem::path save_checkpoint(const std::filesystem::path& dir, const Tree& target,
                                      std::int64_t step, const std::string& prefix = "checkpoint_",
                                      int keep = 1, bool overwrite = false);

/// flax.training.checkpoints.restore_checkpoint into `target`'s structure. With `step`, that
/// checkpoint must exist (else loom::Error "Matching checkpoint not found: <path>"). Without it,
/// the newest checkpoint in `dir` is read, or `dir` itself when it is a file; when `dir` does
/// not exist or holds no checkpoint, `target` is returned unchanged, as Flax does (so a training
/// loop can always call it). A damaged file is a loom::Error naming the file.
///   loom::Tree state = loom::serialization::restore_checkpoint(workdir, init_state);
Tree restore_checkpoint(const std::filesystem::path& dir, const Tree& target,
                        std::optional<std::int64_t> step = std::nullopt,
                        const std::string& prefix = "checkpoint_");

/// flax.training.checkpoints.latest_checkpoint: the newest `<dir>/<prefix><step>`, if any.
///   if (auto p = loom::serialization::latest_checkpoint(workdir)) std::cout << *p;
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir,
                                                       const std::string& prefix = "checkpoint_");

/// flax.training.checkpoints.available_steps: the steps present, ascending.
///   std::vector<std::int64_t> steps = loom::serialization::available_steps(workdir);
std::vector<std::int64_t> available_steps(const std::filesystem::path& dir,
                                          const std::string& prefix = "checkpoint_");

namespace detail {
/// For tests: the byte size above which arrays are chunked (Flax's MAX_CHUNK_SIZE, 2^30).
/// Returns the previous value.
std::size_t set_max_chunk_size(std::size_t bytes);
/// For tests: called by save_checkpoint after each block (1 MiB) written to the temp file,
/// with the bytes written so far (a test kills the process there). Empty to disable.
void set_checkpoint_write_hook(void (*hook)(std::size_t bytes_written));
}  // namespace detail

}  // namespace loom::serialization
