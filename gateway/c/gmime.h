#pragma once
// The one place GMime 3 is included (design.md §5 habit 2). Every GMime object is a GObject and
// is released with g_object_unref: GMimeRef<T> owns one reference, move-only.

#include <gmime/gmime.h>

#include <memory>

#include "gateway/util/c_free.h"

namespace mailgate {

template <class T>
using GMimeRef = std::unique_ptr<T, CFree<&g_object_unref>>;

// g_mime_init() once per process, before the first parse (GMime keeps its charset tables for the
// life of the process). Safe from any thread.
void initialiseGMime();

}  // namespace mailgate
