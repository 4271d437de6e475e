// loom::numpy: the jax.numpy of loom. Users write `namespace jnp = loom::numpy;`.
#pragma once

#include "loom/array.hpp"
#include "loom/numpy/axes.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/linalg.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"
