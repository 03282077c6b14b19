#pragma once
// One deleter for every C library handle: `using Handle = std::unique_ptr<T, CFree<&t_free>>;`
// keeps each handle move-only and freed exactly once.

namespace mailgate {

template <auto FreeFunction>
struct CFree {
  template <class T>
  void operator()(T* pointer) const noexcept {
    if (pointer != nullptr) FreeFunction(pointer);
  }
};

}  // namespace mailgate
