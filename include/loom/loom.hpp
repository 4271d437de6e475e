// The umbrella header: everything loom offers.
//
//   #include <loom/loom.hpp>
//   namespace jnp = loom::numpy;
#pragma once

#include "loom/array.hpp"
#include "loom/autodiff.hpp"
#include "loom/control_flow.hpp"
#include "loom/core.hpp"
#include "loom/distributed.hpp"
#include "loom/dtype.hpp"
#include "loom/error.hpp"
#include "loom/jit.hpp"
#include "loom/lax.hpp"
#include "loom/lax/collectives.hpp"
#include "loom/nn.hpp"
#include "loom/numpy.hpp"
#include "loom/optim.hpp"
#include "loom/random.hpp"
#include "loom/tree.hpp"
#include "loom/vmap.hpp"
