#pragma once
// libunbound (Debian libunbound-dev), included only through this shim (design.md §5, habit 2).
// Its header already declares everything extern "C" and needs nothing included before it.

#include <unbound.h>
