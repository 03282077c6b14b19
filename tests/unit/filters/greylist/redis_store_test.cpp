// The Redis store's address: redis://ADDRESS[:PORT], an IP literal (nothing is looked up on the
// loop), anything else refused with what is wrong.
#include <boost/test/unit_test.hpp>

#include "filters/greylist/redis_store.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(redis_store)

BOOST_AUTO_TEST_CASE(endpoints_from_urls) {
  BOOST_TEST(RedisStore::endpointOf("redis://127.0.0.1:6380").value() == "127.0.0.1:6380");
  BOOST_TEST(RedisStore::endpointOf("redis://127.0.0.1").value() == "127.0.0.1:6379");
  BOOST_TEST(RedisStore::endpointOf("redis://127.0.0.1:6379/").value() == "127.0.0.1:6379");
  BOOST_TEST(RedisStore::endpointOf("redis://[::1]:7000").value() == "[::1]:7000");
  BOOST_TEST(RedisStore::endpointOf("redis://[::1]").value() == "[::1]:6379");
  for (const char* bad : {"127.0.0.1:6379", "redis://localhost:6379", "redis://127.0.0.1:0", "redis://127.0.0.1:x",
                          "redis://[::1", "redis://[::1]x", "rediss://127.0.0.1", "redis://"})
    BOOST_TEST(!RedisStore::endpointOf(bad), bad);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
