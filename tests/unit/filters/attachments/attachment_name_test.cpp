#include "filters/attachments/attachment_name.h"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace mailgate;

BOOST_AUTO_TEST_SUITE(attachment_name)

BOOST_AUTO_TEST_CASE(hidden_ends_are_removed) {
  // U+202E RIGHT-TO-LEFT OVERRIDE, shown as "invoiceexe.pdf".
  BOOST_TEST(normalisedFileName("invoice\xE2\x80\xAE" "fdp.exe") == "invoicefdp.exe");
  // Windows drops trailing dots and blanks: "virus.exe . ." runs as virus.exe.
  BOOST_TEST(normalisedFileName("virus.exe . .") == "virus.exe");
  // Zero-width space, BOM, bidi isolates.
  BOOST_TEST(normalisedFileName("a\xE2\x80\x8B.e\xEF\xBB\xBFxe\xE2\x81\xA6") == "a.exe");
  BOOST_TEST(normalisedFileName("  run.js\t") == "run.js");
  BOOST_TEST(normalisedFileName("r\xC3\xA9sum\xC3\xA9.pdf") == "r\xC3\xA9sum\xC3\xA9.pdf");
  BOOST_TEST(normalisedFileName("a\r\nb.exe") == "ab.exe");
}

BOOST_AUTO_TEST_CASE(globs_ignore_case_and_cross_folders) {
  BOOST_TEST(globMatches("*.exe", "INVOICE.EXE"));
  BOOST_TEST(globMatches("*.exe", "invoice.pdf.exe"));
  BOOST_TEST(globMatches("*.exe", "dir/sub/tool.exe"));
  BOOST_TEST(!globMatches("*.exe", "invoice.exe.pdf"));
  BOOST_TEST(globMatches("*.[jv]s", "run.JS"));
}

BOOST_AUTO_TEST_CASE(reply_names_are_printable_ascii_and_bounded) {
  BOOST_TEST(replySafeName("setup.exe") == "setup.exe");
  BOOST_TEST(replySafeName("a\"b\\c\r\n.exe") == "a?b?c??.exe");
  BOOST_TEST(replySafeName("r\xC3\xA9sum\xC3\xA9.exe") == "r?sum?.exe");
  BOOST_TEST(replySafeName("x\xE2\x80\xAE" "y") == "xy");
  std::string long_name(200, 'a');
  std::string safe = replySafeName(long_name);
  BOOST_TEST(safe.size() == max_reply_name_octets);
  BOOST_TEST(safe.ends_with("..."));
  BOOST_TEST(replySafeName(std::string(max_reply_name_octets, 'b')) == std::string(max_reply_name_octets, 'b'));
}

BOOST_AUTO_TEST_SUITE_END()
