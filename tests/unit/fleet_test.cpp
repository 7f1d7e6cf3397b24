// Fleets' pure part: the targets file, sharding, the tenant pattern.
#include "stepwise/fleet.hpp"

#include <gtest/gtest.h>

#include <set>

#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

TEST(FleetTargets, LinesCommentsServicesAndMaskedNames) {
  const auto t = parse_targets("t.txt",
                               "# production\n"
                               "\n"
                               "postgres://app:s3cret@db1/app\n"
                               "  host=db2 dbname=app password=hunter2  \r\n"
                               "tenant-eu\n");
  ASSERT_EQ(t.size(), 3U);
  EXPECT_EQ(t[0].url, "postgres://app:s3cret@db1/app");
  EXPECT_EQ(t[0].name.find("s3cret"), std::string::npos) << t[0].name;
  EXPECT_NE(t[0].name.find("db1"), std::string::npos) << t[0].name;
  EXPECT_EQ(t[1].url, "host=db2 dbname=app password=hunter2");
  EXPECT_EQ(t[1].name.find("hunter2"), std::string::npos) << t[1].name;
  EXPECT_EQ(t[2].name, "tenant-eu");
  EXPECT_EQ(t[2].url, "service=tenant-eu");
}

TEST(FleetTargets, JsonArray) {
  const auto t = parse_targets("t.json",
                               R"(  [{"name": "eu", "url": "postgres://u:pw@eu/app"},
                                     {"url": "postgres://u:pw@us/app"}])");
  ASSERT_EQ(t.size(), 2U);
  EXPECT_EQ(t[0].name, "eu");
  EXPECT_EQ(t[0].url, "postgres://u:pw@eu/app");
  EXPECT_EQ(t[1].name.find("pw"), std::string::npos) << t[1].name;
}

TEST(FleetTargets, BadInputNamesTheFileAndNeverTheSecret) {
  const auto message = [](std::string_view text) {
    try {
      (void)parse_targets("fleet.txt", text);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  for (const auto* text : {"", "# only a comment\n", "[]", "[{\"name\": \"a\"}]", "[1]",
                           "{\"url\": \"x\"}", "[{\"url\": \"postgres://u:topsecret@h/d\""}) {
    const auto m = message(text);
    EXPECT_NE(m, "no error") << text;
    EXPECT_NE(m.find("fleet.txt"), std::string::npos) << m;
    EXPECT_EQ(m.find("topsecret"), std::string::npos) << m;
  }
  const auto dup = message("postgres://u:topsecret@h/d\npostgres://u:topsecret@h/d\n");
  EXPECT_NE(dup.find("twice"), std::string::npos) << dup;
  EXPECT_EQ(dup.find("topsecret"), std::string::npos) << dup;
}

TEST(FleetShard, Parse) {
  EXPECT_EQ(parse_shard("--shard", "0/1", std::nullopt).count, 1U);
  const auto s = parse_shard("--shard", "2/5", std::nullopt);
  EXPECT_EQ(s.index, 2U);
  EXPECT_EQ(s.count, 5U);
  const auto a = parse_shard("--shard", "auto/3", std::string_view("1"));
  EXPECT_EQ(a.index, 1U);
  EXPECT_EQ(a.count, 3U);
  for (const auto* bad : {"", "3", "5/5", "-1/2", "1/0", "a/2", "1/2/3", "1/99999", " 1/2"})
    EXPECT_THROW((void)parse_shard("--shard", bad, std::nullopt), UsageError) << bad;
  EXPECT_THROW((void)parse_shard("--shard", "auto/3", std::nullopt), UsageError);
  EXPECT_THROW((void)parse_shard("--shard", "auto/3", std::string_view("x")), UsageError);
  EXPECT_THROW((void)parse_shard("--shard", "auto/3", std::string_view("3")), UsageError);
}

TEST(FleetShard, EveryTargetInExactlyOneShardAndStable) {
  std::vector<std::string> names;
  for (int i = 0; i < 500; ++i) names.push_back("tenant_" + std::to_string(i));
  for (std::uint32_t n = 1; n <= 7; ++n) {
    std::multiset<std::string> seen;
    std::size_t smallest = names.size(), largest = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto part = select_shard(names, Shard{i, n}, [](const std::string& s) { return s; });
      smallest = std::min(smallest, part.size());
      largest = std::max(largest, part.size());
      seen.insert(part.begin(), part.end());
    }
    EXPECT_EQ(seen.size(), names.size()) << n;
    for (const auto& name : names) EXPECT_EQ(seen.count(name), 1U) << name << " of " << n;
    // A usable spread: no shard gets less than half its share.
    EXPECT_GE(smallest * 2 * n, names.size()) << n;
  }
  // Pinned values: the same on every machine and build (FNV-1a 64).
  EXPECT_EQ(shard_hash(""), 14695981039346656037ULL);
  EXPECT_EQ(shard_hash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(shard_of("anything", 1), 0U);
}

TEST(FleetTenants, GlobToLike) {
  EXPECT_EQ(glob_to_like("tenant_*"), "tenant\\_%");
  EXPECT_EQ(glob_to_like("t?"), "t_");
  EXPECT_EQ(glob_to_like("100%\\"), "100\\%\\\\");
  EXPECT_EQ(glob_to_like("plain"), "plain");
}

}  // namespace
}  // namespace stepwise
