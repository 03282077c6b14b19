#include "gateway/util/gmime_c.h"

#include <mutex>

namespace mailgate {

void initialiseGMime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

}  // namespace mailgate
