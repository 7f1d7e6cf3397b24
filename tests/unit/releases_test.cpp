#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "stepwise/errors.hpp"
#include "stepwise/releases.hpp"

namespace stepwise {
namespace {

MigrationSet known_set() {
  std::vector<MigrationFile> files;
  for (int v : {10, 20, 30, 40, 50}) {
    MigrationFile f;
    f.name = std::to_string(v) + "_m" + std::to_string(v) + ".up.sql";
    f.bytes = "SELECT " + std::to_string(v) + ";";
    files.push_back(f);
  }
  return build_migration_set(files);
}

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto nl = s.find('\n', start);
    out.push_back(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string error_of(std::string_view json) {
  const auto set = known_set();
  try {
    (void)parse_releases(json, set);
  } catch (const SourceError& e) {
    EXPECT_EQ(e.code(), ExitCode::kInvalidSource);
    return e.what();
  }
  ADD_FAILURE() << "parse_releases accepted: " << json;
  return {};
}

// One line, naming releases.json, the release and the field.
void expect_names(const std::string& msg, std::string_view release, std::string_view field) {
  EXPECT_TRUE(msg.starts_with("releases.json: ")) << msg;
  EXPECT_TRUE(contains(msg, release)) << "release " << release << " not named in: " << msg;
  EXPECT_TRUE(contains(msg, field)) << "field " << field << " not named in: " << msg;
}

TEST(ParseReleases, Valid) {
  const auto set = known_set();
  const auto r = parse_releases(R"({"releases": [
      {"name": "1.0.0", "schema": 20, "min_schema": 10, "notes": "first"},
      {"name": "1.1.0", "schema": 30, "min_schema": 20},
      {"name": "2.0.0", "schema": 50, "min_schema": 50}
  ]})",
                                set);
  ASSERT_EQ(r.all().size(), 3u);
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(r.all()[0], (Release{"1.0.0", 20, 10}));
  EXPECT_EQ(r.all()[1], (Release{"1.1.0", 30, 20}));
  EXPECT_EQ(r.all()[2], (Release{"2.0.0", 50, 50}));
  ASSERT_NE(r.find("1.1.0"), nullptr);
  EXPECT_EQ(r.find("1.1.0")->schema, 30);
  EXPECT_EQ(r.find("9.9.9"), nullptr);
  ASSERT_NE(r.with_schema(50), nullptr);
  EXPECT_EQ(r.with_schema(50)->name, "2.0.0");
  EXPECT_EQ(r.with_schema(40), nullptr);
}

TEST(ParseReleases, SingleReleaseWithEqualSchemaAndMin) {
  const auto r =
      parse_releases(R"({"releases":[{"name":"a","schema":10,"min_schema":10}]})", known_set());
  ASSERT_EQ(r.all().size(), 1u);
  EXPECT_EQ(r.all()[0].schema, 10);
}

TEST(ParseReleases, InvalidJson) {
  const auto msg = error_of(R"({"releases": [ {"name": "1.0", )");
  EXPECT_TRUE(msg.starts_with("releases.json: ")) << msg;
  EXPECT_TRUE(contains(msg, "JSON")) << msg;
}

TEST(ParseReleases, EmptyText) {
  const auto msg = error_of("");
  EXPECT_TRUE(msg.starts_with("releases.json: ")) << msg;
}

TEST(ParseReleases, NotAnObject) {
  EXPECT_TRUE(error_of("[]").starts_with("releases.json: "));
  EXPECT_TRUE(contains(error_of(R"({"release": []})"), "\"releases\""));
  EXPECT_TRUE(contains(error_of(R"({"releases": {}})"), "\"releases\""));
}

TEST(ParseReleases, EmptyArray) {
  const auto msg = error_of(R"({"releases": []})");
  EXPECT_TRUE(msg.starts_with("releases.json: ")) << msg;
  EXPECT_TRUE(contains(msg, "empty")) << msg;
}

TEST(ParseReleases, ItemNotAnObject) {
  const auto msg = error_of(R"({"releases": [42]})");
  EXPECT_TRUE(contains(msg, "release #1")) << msg;
}

TEST(ParseReleases, MissingName) {
  const auto msg = error_of(R"({"releases": [{"schema": 10, "min_schema": 10}]})");
  expect_names(msg, "release #1", "\"name\"");
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(ParseReleases, EmptyOrNonStringName) {
  expect_names(error_of(R"({"releases": [{"name": "", "schema": 10, "min_schema": 10}]})"),
               "release #1", "\"name\"");
  expect_names(error_of(R"({"releases": [{"name": 1, "schema": 10, "min_schema": 10}]})"),
               "release #1", "\"name\"");
}

TEST(ParseReleases, MissingSchema) {
  const auto msg = error_of(R"({"releases": [{"name": "1.0", "min_schema": 10}]})");
  expect_names(msg, "\"1.0\"", "\"schema\"");
  EXPECT_TRUE(contains(msg, "missing")) << msg;
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(ParseReleases, MissingMinSchema) {
  const auto msg = error_of(R"({"releases": [{"name": "1.0", "schema": 10}]})");
  expect_names(msg, "\"1.0\"", "\"min_schema\"");
  EXPECT_TRUE(contains(msg, "missing")) << msg;
}

TEST(ParseReleases, UnknownField) {
  const auto msg =
      error_of(R"({"releases": [{"name": "1.0", "schema": 10, "min_schema": 10, "shema": 1}]})");
  expect_names(msg, "\"1.0\"", "\"shema\"");
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(ParseReleases, VersionNotAKnownMigration) {
  const auto msg = error_of(R"({"releases": [{"name": "1.0", "schema": 15, "min_schema": 10}]})");
  expect_names(msg, "\"1.0\"", "\"schema\"");
  EXPECT_TRUE(contains(msg, "15")) << msg;
}

TEST(ParseReleases, MinSchemaNotAKnownMigration) {
  const auto msg = error_of(R"({"releases": [{"name": "1.0", "schema": 20, "min_schema": 5}]})");
  expect_names(msg, "\"1.0\"", "\"min_schema\"");
  EXPECT_TRUE(contains(msg, "5")) << msg;
}

TEST(ParseReleases, NonMonotonicSchema) {
  const auto msg = error_of(R"({"releases": [
      {"name": "1.0", "schema": 30, "min_schema": 10},
      {"name": "1.1", "schema": 20, "min_schema": 10}]})");
  expect_names(msg, "\"1.1\"", "\"schema\"");
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(ParseReleases, EqualSchemaIsNotMonotonic) {
  const auto msg = error_of(R"({"releases": [
      {"name": "1.0", "schema": 30, "min_schema": 10},
      {"name": "1.1", "schema": 30, "min_schema": 10}]})");
  expect_names(msg, "\"1.1\"", "\"schema\"");
}

TEST(ParseReleases, MinSchemaNewerThanSchema) {
  const auto msg = error_of(R"({"releases": [{"name": "1.0", "schema": 20, "min_schema": 30}]})");
  expect_names(msg, "\"1.0\"", "\"min_schema\"");
  EXPECT_TRUE(contains(msg, "30")) << msg;
  EXPECT_TRUE(contains(msg, "20")) << msg;
}

TEST(ParseReleases, DecreasingMinSchema) {
  const auto msg = error_of(R"({"releases": [
      {"name": "1.0", "schema": 30, "min_schema": 20},
      {"name": "1.1", "schema": 40, "min_schema": 10}]})");
  expect_names(msg, "\"1.1\"", "\"min_schema\"");
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(ParseReleases, DuplicateName) {
  const auto msg = error_of(R"({"releases": [
      {"name": "1.0", "schema": 20, "min_schema": 10},
      {"name": "1.0", "schema": 30, "min_schema": 10}]})");
  expect_names(msg, "\"1.0\"", "\"name\"");
  EXPECT_TRUE(contains(msg, "duplicate")) << msg;
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(ParseReleases, NegativeVersion) {
  const auto msg = error_of(R"({"releases": [{"name": "1.0", "schema": -10, "min_schema": 10}]})");
  expect_names(msg, "\"1.0\"", "\"schema\"");
  EXPECT_TRUE(contains(msg, "-10")) << msg;
}

TEST(ParseReleases, ZeroVersion) {
  expect_names(error_of(R"({"releases": [{"name": "1.0", "schema": 10, "min_schema": 0}]})"),
               "\"1.0\"", "\"min_schema\"");
}

TEST(ParseReleases, FloatVersion) {
  expect_names(error_of(R"({"releases": [{"name": "1.0", "schema": 10.5, "min_schema": 10}]})"),
               "\"1.0\"", "\"schema\"");
  // Even a float with an integral value is not an integer in the file.
  expect_names(error_of(R"({"releases": [{"name": "1.0", "schema": 10.0, "min_schema": 10}]})"),
               "\"1.0\"", "\"schema\"");
}

TEST(ParseReleases, StringOfDigitsIsAVersion) {
  // A JSON string of digits holds a version of any length; leading zeros are ignored.
  const auto set = known_set();
  const auto r =
      parse_releases(R"({"releases": [{"name": "1.0", "schema": "0010", "min_schema": 10}]})", set);
  ASSERT_EQ(r.all().size(), 1u);
  EXPECT_EQ(r.all()[0].schema, Version(10));
  EXPECT_EQ(r.all()[0].schema.to_string(), "10");
}

TEST(ParseReleases, StringThatIsNotDigitsRefused) {
  for (const auto* bad : {R"("10a")", R"("-10")", R"(" 10")", R"("")", R"("+10")", R"("0")"}) {
    const auto json =
        fmt::format(R"({{"releases": [{{"name": "1.0", "schema": {}, "min_schema": 10}}]}})", bad);
    expect_names(error_of(json), "\"1.0\"", "\"schema\"");
  }
}

TEST(ParseReleases, NullAndBoolVersions) {
  expect_names(error_of(R"({"releases": [{"name": "1.0", "schema": null, "min_schema": 10}]})"),
               "\"1.0\"", "\"schema\"");
  expect_names(error_of(R"({"releases": [{"name": "1.0", "schema": 10, "min_schema": true}]})"),
               "\"1.0\"", "\"min_schema\"");
}

TEST(ParseReleases, VersionBeyondInt64) {
  expect_names(
      error_of(
          R"({"releases": [{"name": "1.0", "schema": 18446744073709551615, "min_schema": 10}]})"),
      "\"1.0\"", "\"schema\"");
  expect_names(
      error_of(
          R"({"releases": [{"name": "1.0", "schema": 9223372036854775808, "min_schema": 10}]})"),
      "\"1.0\"", "\"schema\"");
}

TEST(ParseReleases, EveryProblemReportedOneLineEach) {
  const auto msg = error_of(R"({"releases": [
      {"name": "a", "schema": 20, "min_schema": 10, "extra": 1},
      {"name": "b", "schema": 15, "min_schema": 10},
      {"name": "c", "schema": 40, "min_schema": 50},
      {"schema": 50, "min_schema": 30}]})");
  const auto lines = lines_of(msg);
  ASSERT_GE(lines.size(), 4u) << msg;
  for (const auto& line : lines) EXPECT_TRUE(line.starts_with("releases.json: release ")) << line;
  EXPECT_TRUE(contains(msg, "release \"a\": unknown field \"extra\"")) << msg;
  EXPECT_TRUE(contains(msg, "release \"b\": field \"schema\"")) << msg;
  EXPECT_TRUE(contains(msg, "release \"c\": field \"min_schema\"")) << msg;
  EXPECT_TRUE(contains(msg, "release #4: field \"name\"")) << msg;
}

}  // namespace
}  // namespace stepwise
