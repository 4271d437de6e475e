// Losses of optax.losses (optax/losses/_classification.py, _regression.py) and the accuracy
// metric of Flax's examples. They live in loom::optim, as optax exports them at top level
// (optax.softmax_cross_entropy); each returns per-example values: reduce with jnp::mean.
//
//   loom::Array loss = jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, y));
//   loom::Array acc = optim::accuracy(logits, y);        // float32 scalar in [0, 1]
#pragma once

#include <optional>

#include "loom/array.hpp"

namespace loom::optim {

/// optax.softmax_cross_entropy_with_integer_labels over the last axis: logsumexp(logits) -
/// logits[label], shape logits.shape[:-1]. One fused, max-shifted kernel; its VJP is
/// g * (softmax(logits) - onehot(label)). labels: int32/uint32 of shape logits.shape[:-1] with
/// values in [0, num_classes) (else loom::Error; optax would silently return garbage).
///   optim::softmax_cross_entropy_with_integer_labels({{1.2f, -0.8f, -0.5f}}, Array({0}, {1}))
Array softmax_cross_entropy_with_integer_labels(const Array& logits, const Array& labels);

/// optax.softmax_cross_entropy: -sum(labels * log_softmax(logits), -1); labels (a probability
/// distribution per row) have the logits' shape.
Array softmax_cross_entropy(const Array& logits, const Array& labels);

/// optax.sigmoid_binary_cross_entropy: -labels log(sigmoid(x)) - (1 - labels) log(1 - sigmoid(x)),
/// elementwise, computed stably from log_sigmoid.
Array sigmoid_binary_cross_entropy(const Array& logits, const Array& labels);

/// optax.squared_error: (predictions - targets)^2 elementwise (targets default 0).
Array squared_error(const Array& predictions, const std::optional<Array>& targets = std::nullopt);

/// optax.l2_loss: 0.5 * squared_error.
Array l2_loss(const Array& predictions, const std::optional<Array>& targets = std::nullopt);

/// optax.huber_loss: 0.5 e^2 where |e| <= delta, delta (|e| - 0.5 delta) beyond; e = p - t.
Array huber_loss(const Array& predictions, const std::optional<Array>& targets = std::nullopt,
                 double delta = 1.0);

/// optax.cosine_distance over the last axis: 1 - <p, t> / (|p| |t|), the squared norms clipped
/// below at epsilon.
Array cosine_distance(const Array& predictions, const Array& targets, double epsilon = 0.0);

/// Fraction of rows whose argmax over the last axis equals the integer label (Flax's
/// examples: jnp.mean(jnp.argmax(logits, -1) == labels)); a float32 scalar.
Array accuracy(const Array& logits, const Array& labels);

}  // namespace loom::optim
