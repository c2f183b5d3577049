// peerlink::Address (include/peerlink/address.hpp): strict numeric parsing, printing, v4-mapped forms.
#include "peerlink/address.hpp"

#include <gtest/gtest.h>
#include <net/if.h>

#include <string>
#include <vector>

namespace peerlink {
namespace {

struct GoodCase {
  std::string text;
  Address::Family family;
  uint16_t port;
  std::string printed;
};

TEST(AddressParse, GoodInputs_ParseToTheExpectedAddress) {
  const std::vector<GoodCase> cases = {
      {"192.0.2.1:7777", Address::Family::kIPv4, 7777, "192.0.2.1:7777"},
      {"192.0.2.1", Address::Family::kIPv4, 0, "192.0.2.1:0"},
      {"0.0.0.0:65535", Address::Family::kIPv4, 65535, "0.0.0.0:65535"},
      {"255.255.255.255:0", Address::Family::kIPv4, 0, "255.255.255.255:0"},
      {"198.51.100.7:00080", Address::Family::kIPv4, 80, "198.51.100.7:80"},
      {"[2001:db8::1]:7777", Address::Family::kIPv6, 7777, "[2001:db8::1]:7777"},
      {"[2001:DB8::A]:1", Address::Family::kIPv6, 1, "[2001:db8::a]:1"},
      {"[2001:db8::1]", Address::Family::kIPv6, 0, "[2001:db8::1]:0"},
      {"2001:db8::1", Address::Family::kIPv6, 0, "[2001:db8::1]:0"},
      {"::1", Address::Family::kIPv6, 0, "[::1]:0"},
      {"[::]:0", Address::Family::kIPv6, 0, "[::]:0"},
      {"[::ffff:192.0.2.1]:80", Address::Family::kIPv6, 80, "[::ffff:192.0.2.1]:80"},
      {"[fe80::1%2]:7777", Address::Family::kIPv6, 7777, "[fe80::1%2]:7777"},
      {"fe80::1%3", Address::Family::kIPv6, 0, "[fe80::1%3]:0"},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE(c.text);
    Result<Address> a = Address::parse(c.text);
    ASSERT_TRUE(a.has_value()) << a.error().message;
    EXPECT_EQ(a->family(), c.family);
    EXPECT_EQ(a->port(), c.port);
    EXPECT_EQ(a->to_string(), c.printed);
  }
}

TEST(AddressParse, NoPortInText_UsesDefaultPort) {
  EXPECT_EQ(Address::parse("192.0.2.1", 9)->port(), 9);
  EXPECT_EQ(Address::parse("2001:db8::1", 9)->port(), 9);
  EXPECT_EQ(Address::parse("[2001:db8::1]", 9)->port(), 9);
  EXPECT_EQ(Address::parse("192.0.2.1:0", 9)->port(), 0);
}

TEST(AddressParse, InterfaceNameScope_BecomesItsIndexAndPrintsNumerically) {
  unsigned lo = if_nametoindex("lo");
  if (lo == 0) GTEST_SKIP() << "no interface named lo on this host";
  Result<Address> a = Address::parse("[fe80::1%lo]:5000");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->scope_id(), lo);
  EXPECT_EQ(a->to_string(), "[fe80::1%" + std::to_string(lo) + "]:5000");
}

struct BadCase {
  std::string text;
  std::string problem;  // a part of the error message
};

TEST(AddressParse, BadInputs_FailWithAMessageNamingTheProblem) {
  const std::vector<BadCase> cases = {
      {"", "empty"},
      {"garbage", "is not an IPv4 address"},
      {"example.com:80", "is not an IPv4 address"},
      {"localhost", "is not an IPv4 address"},
      {" 192.0.2.1", "is not an IPv4 address"},
      {"192.0.2", "is not an IPv4 address"},
      {"192.0.2.256", "is not an IPv4 address"},
      {"192.0.2.1%eth0", "is not an IPv4 address"},
      {"192.0.2.1:65536", "out of range"},
      {"192.0.2.1:99999999999999999999999", "out of range"},
      {"192.0.2.1:80a", "not a decimal number"},
      {"192.0.2.1:-1", "not a decimal number"},
      {"192.0.2.1:+80", "not a decimal number"},
      {"192.0.2.1: 80", "not a decimal number"},
      {"192.0.2.1:0x50", "not a decimal number"},
      {"192.0.2.1:", "empty port"},
      {"192.0.2.1:80:90", "is not an IPv6 address"},
      {"[::1", "missing ']'"},
      {"[::1]:", "empty port"},
      {"[::1]80", "expected ':port' after ']'"},
      {"[::1]:80]", "not a decimal number"},
      {"[::1]:65536", "out of range"},
      {"::1]:80", "']' without a matching '['"},
      {"[]:80", "empty IPv6 address"},
      {"[192.0.2.1]:80", "brackets are only for IPv6"},
      {"2001:db8::1::2", "is not an IPv6 address"},
      {"2001:db8:1:2:3:4:5:6:7", "is not an IPv6 address"},
      {"[2001:db8::g]:80", "is not an IPv6 address"},
      {"[fe80::1%]:80", "empty scope"},
      {"[fe80::1%no-such-if0]:80", "unknown network interface"},
      {"[fe80::1%a-name-longer-than-ifnamsiz]:80", "unknown network interface"},
      {"[fe80::1%99999999999]:80", "too large"},
      {std::string("192.0.2.1\0:80", 13), "NUL"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.text);
    Result<Address> a = Address::parse(c.text);
    ASSERT_FALSE(a.has_value());
    EXPECT_EQ(a.error().code, ErrorCode::kInvalidArgument);
    const std::string& error = a.error().message;
    EXPECT_NE(error.find("invalid address"), std::string::npos) << error;
    EXPECT_NE(error.find(c.problem), std::string::npos) << error;
  }
}

TEST(AddressParse, ErrorMessage_ShowsControlCharactersEscaped) {
  Result<Address> a = Address::parse("1.2.3.4\n:80x");
  ASSERT_FALSE(a.has_value());
  const std::string& error = a.error().message;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_NE(error.find("\\x0a"), std::string::npos) << error;
}

TEST(AddressToString, ParseOfPrinted_GivesTheSameAddress) {
  const std::vector<Address> addresses = {
      Address::ipv4({192, 0, 2, 1}, 7777),
      Address::ipv4({0, 0, 0, 0}, 0),
      Address::loopback_v4(65535),
      Address::any_v6(443),
      Address::ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 7777),
      Address::ipv6({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 1, 42),
      Address::ipv4({203, 0, 113, 9}, 9).mapped(),
  };
  for (const Address& a : addresses) {
    SCOPED_TRACE(a.to_string());
    Result<Address> b = Address::parse(a.to_string());
    ASSERT_TRUE(b.has_value()) << b.error().message;
    EXPECT_EQ(*b, a);
  }
}

TEST(AddressToString, Unspecified_PrintsNone) {
  EXPECT_EQ(Address().to_string(), "(none)");
}

TEST(AddressMapping, IPv4_MapsToIPv6AndBack) {
  Address v4 = Address::ipv4({192, 0, 2, 1}, 80);
  Address mapped = v4.mapped();
  EXPECT_TRUE(mapped.is_ipv6());
  EXPECT_TRUE(mapped.is_ipv4_or_mapped());
  EXPECT_EQ(mapped.port(), 80);
  EXPECT_EQ(mapped.to_string(), "[::ffff:192.0.2.1]:80");
  EXPECT_EQ(mapped, *Address::parse("[::ffff:192.0.2.1]:80"));
  EXPECT_EQ(mapped.unmapped(), v4);
  EXPECT_EQ(mapped.mapped(), mapped);  // already IPv6: unchanged
  EXPECT_EQ(v4.unmapped(), v4);        // already IPv4: unchanged
}

TEST(AddressMapping, PlainIPv6AndUnspecified_AreUnchanged) {
  Address v6 = *Address::parse("[2001:db8::1]:80");
  EXPECT_FALSE(v6.is_ipv4_or_mapped());
  EXPECT_EQ(v6.unmapped(), v6);
  EXPECT_EQ(v6.mapped(), v6);
  EXPECT_TRUE(Address().mapped().is_unspecified());
  EXPECT_TRUE(Address().unmapped().is_unspecified());
  // ::ffff:0:0/96 only: the IPv4-compatible ::a.b.c.d form is not mapped.
  EXPECT_FALSE(Address::parse("::192.0.2.1")->is_ipv4_or_mapped());
}

TEST(AddressClassify, LoopbackAndAny) {
  EXPECT_TRUE(Address::parse("127.0.0.1")->is_loopback());
  EXPECT_TRUE(Address::parse("127.1.2.3")->is_loopback());
  EXPECT_TRUE(Address::parse("::1")->is_loopback());
  EXPECT_TRUE(Address::parse("::ffff:127.0.0.1")->is_loopback());
  EXPECT_FALSE(Address::parse("192.0.2.1")->is_loopback());
  EXPECT_FALSE(Address::parse("::2")->is_loopback());
  EXPECT_FALSE(Address().is_loopback());

  EXPECT_TRUE(Address::parse("0.0.0.0")->is_any());
  EXPECT_TRUE(Address::parse("::")->is_any());
  EXPECT_TRUE(Address::any_v6(1).is_any());
  EXPECT_FALSE(Address::parse("192.0.2.1")->is_any());
  EXPECT_FALSE(Address::parse("::1")->is_any());
  EXPECT_FALSE(Address().is_any());
}

TEST(AddressCompare, FamilyPortAndScope_AllCount) {
  Address a = *Address::parse("[fe80::1%2]:80");
  EXPECT_EQ(a, *Address::parse("[fe80::1%2]:80"));
  EXPECT_NE(a, *Address::parse("[fe80::1%3]:80"));
  EXPECT_NE(a, *Address::parse("[fe80::1%2]:81"));
  EXPECT_NE(Address::ipv4({192, 0, 2, 1}, 80), Address::ipv4({192, 0, 2, 1}, 80).mapped());
}

}  // namespace
}  // namespace peerlink
