#pragma once
// How much slower a sanitizer build runs the same work, for the few bounds a test asserts on time
// ("the scan stops at its budget, not after 18 s"): a bound that separates stopped from
// never-stopped in a release build must still separate them, not fail, under ThreadSanitizer's
// 5-15x and AddressSanitizer's 2-3x.

namespace mailgate::test {

#if defined(__SANITIZE_THREAD__)
constexpr int sanitizer_pace = 8;
#elif defined(__SANITIZE_ADDRESS__)
constexpr int sanitizer_pace = 3;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int sanitizer_pace = 8;
#elif __has_feature(address_sanitizer)
constexpr int sanitizer_pace = 3;
#else
constexpr int sanitizer_pace = 1;
#endif
#else
constexpr int sanitizer_pace = 1;
#endif

}  // namespace mailgate::test
