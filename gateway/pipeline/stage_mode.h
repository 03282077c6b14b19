#pragma once

namespace mailgate {

// Shadow: the stage's verdict is logged as what it would have done, and the transaction goes on.
enum class StageMode { Enforce, Shadow };

}  // namespace mailgate
