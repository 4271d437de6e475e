// loom::optim: optax in C++ (gradient transformations, optimizers, schedules, losses).
//
//   #include <loom/optim.hpp>
//   namespace optim = loom::optim;
//   auto tx = optim::adam(1e-3);
//   loom::Tree opt_state = tx.init(params);
//   auto [updates, next] = tx.update(grads, std::move(opt_state), params);
//   params = optim::apply_updates(std::move(params), updates);
#pragma once

#include "loom/optim/alias.hpp"
#include "loom/optim/base.hpp"
#include "loom/optim/losses.hpp"
#include "loom/optim/schedules.hpp"
#include "loom/optim/transform.hpp"
