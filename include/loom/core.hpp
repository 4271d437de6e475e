// loom::core: Flax's functional core. Modules as plain functions f(Scope&, args...).
//
//   #include <loom/core.hpp>
//   auto [y, variables] = loom::core::init(f)(loom::random::key(0), x);
//   loom::Array y2 = loom::core::apply(f)(variables, x);
#pragma once

#include "loom/core/errors.hpp"
#include "loom/core/scope.hpp"
