#include "gateway/c/gmime.h"

#include <mutex>

namespace mailgate {

void initialiseGMime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

}  // namespace mailgate
