#define BOOST_TEST_MODULE mailgate unit tests
#include <boost/test/unit_test.hpp>
