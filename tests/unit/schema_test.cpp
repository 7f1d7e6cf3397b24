// The description's containers and its JSON reading without a database: AttrMap behaves as
// the std::map it replaced, and the streaming reader accepts and refuses what the DOM reading
// did (the text round-trips through to_json byte for byte); ExpectedMatcher (validate keeps
// only what differs from the expected description) changes no finding.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "schema_objects.hpp"
#include "stepwise/drift.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/schema.hpp"

namespace stepwise {
namespace {

TEST(AttrMap, BehavesAsTheMapItReplaced) {
  AttrMap a;
  a["type"] = "integer";
  a["default"] = "0";
  a.emplace("not_null", "true");
  a.insert_or_assign("type", "bigint");
  EXPECT_FALSE(a.emplace("type", "text").second);  // an existing key is kept
  std::map<std::string, std::string> m{{"type", "bigint"}, {"default", "0"}, {"not_null", "true"}};
  EXPECT_EQ(a, AttrMap(m));
  EXPECT_EQ(a.to_map(), m);
  std::string keys;
  for (const auto& [k, v] : a) keys += k + "=" + v + ";";
  EXPECT_EQ(keys, "default=0;not_null=true;type=bigint;");  // key order, as std::map
  EXPECT_EQ(a.count("type"), 1u);
  EXPECT_EQ(a.count("nope"), 0u);
  EXPECT_EQ(a.at("default"), "0");
  EXPECT_THROW((void)a.at("nope"), std::out_of_range);
  const auto it = a.find("not_null");
  ASSERT_NE(it, a.end());
  EXPECT_EQ(it->second, "true");
  a.erase(it);
  EXPECT_EQ(a.erase("default"), 1u);
  EXPECT_EQ(a.erase("default"), 0u);
  EXPECT_EQ(a.size(), 1u);
  a.find("type")->second = "text";
  EXPECT_EQ(a.at("type"), "text");
  // Keys no query writes are interned too, and compare by text.
  AttrMap b{{"zz_custom", "1"}, {"aa_custom", "2"}};
  EXPECT_EQ(b.begin()->first, "aa_custom");
  EXPECT_EQ(intern_attr_key("zz_custom"), intern_attr_key(std::string("zz") + "_custom"));
  EXPECT_EQ(*intern_attr_key("sql_name"), "sql_name");
  // Bulk building: the last of repeated keys wins, as with repeated assignments.
  AttrMap c;
  c.append_unsorted("b", "1");
  c.append_unsorted("a", "2");
  c.append_unsorted("b", "3");
  c.finish();
  EXPECT_EQ(c, (AttrMap{{"a", "2"}, {"b", "3"}}));
  EXPECT_EQ(c.erase_if([](const auto& kv) { return kv.second == "3"; }), 1u);
  EXPECT_EQ(c, (AttrMap{{"a", "2"}}));
}

SchemaDescription sample() {
  SchemaDescription d;
  SchemaObject t;
  t.kind = "table";
  t.schema = "public";
  t.name = "t \"quoted\"";
  t.attrs = std::map<std::string, std::string>{{"sql_name", "public.\"t \"\"quoted\"\"\""},
                                               {"comment", "line 1\nline 2\ttab \\ é \u0001"}};
  SchemaObject c;
  c.kind = "column";
  c.schema = "public";
  c.table = "t \"quoted\"";
  c.name = "id";
  c.attrs = std::map<std::string, std::string>{{"type", "bigint"}, {"position", "1"}};
  SchemaObject f;
  f.kind = "function";
  f.schema = "app";
  f.name = "f()";
  f.attrs = std::map<std::string, std::string>{{"kind", "function"}, {"custom_key", "x"}};
  d.objects = {f, c, t};
  d.unknown_kinds = {"statistics", "collation"};
  canonicalize(d);
  return d;
}

TEST(SchemaJson, RoundTripsByteForByte) {
  const auto d = sample();
  const auto text = to_json(d);
  const auto back = parse_schema_json(text, "expected/1.json");
  EXPECT_EQ(back, d);
  EXPECT_EQ(to_json(back), text);
  ASSERT_EQ(back.objects.size(), 3u);
  EXPECT_EQ(back.objects[0].kind, "table");  // canonical order
  EXPECT_EQ(back.objects[2].attr("custom_key"), "x");
}

TEST(SchemaJson, ReadsHandWrittenFilesAsTheDomDid) {
  // Members in any order, unknown members (nested too) ignored, the last of repeated ones
  // counts, empty attributes dropped, "table" optional, null attrs are none.
  const auto d = parse_schema_json(
      R"({"objects": [{"name": "t", "extra": {"a": [1, {"b": null}]}, "attrs": {"x": "1", "x": "2",
          "empty": ""}, "schema": "s", "kind": "table"}, {"kind": "schema", "schema": "s",
          "name": "s", "attrs": null}], "note": [true, 1.5], "format": 1})",
      "f.json");
  ASSERT_EQ(d.objects.size(), 2u);
  EXPECT_EQ(d.objects[0].kind, "schema");
  EXPECT_TRUE(d.objects[0].attrs.empty());
  EXPECT_EQ(d.objects[1].attrs, (AttrMap{{"x", "2"}}));
  EXPECT_TRUE(d.unknown_kinds.empty());
}

void expect_refused(const std::string& text, const std::string& why) {
  try {
    (void)parse_schema_json(text, "expected/7.json");
    ADD_FAILURE() << "accepted: " << text;
  } catch (const SourceError& e) {
    EXPECT_NE(std::string(e.what()).find("expected/7.json: " + why), std::string::npos) << e.what();
  }
}

TEST(SchemaJson, RefusesWhatIsNotADescription) {
  const std::string no = "not a stepwise schema description (format 1)";
  expect_refused("[]", no);
  expect_refused("1", no);
  expect_refused(R"({"format": 2, "objects": []})", no);
  expect_refused(R"({"objects": []})", no);
  expect_refused(R"({"format": 1})", no);
  expect_refused(R"({"format": 1, "objects": {}})", no);
  const std::string bad = "invalid schema description: ";
  expect_refused(R"({"format": 1, "objects": [)", bad + "[json.exception.parse_error");
  expect_refused("", bad + "[json.exception.parse_error");
  expect_refused(R"({"format": 1, "objects": [{"kind": "table", "schema": "s", "attrs": {}}]})",
                 bad + "objects[0]: key 'name' not found");
  expect_refused(R"({"format": 1, "objects": [{"kind": "table", "schema": "s", "name": "t"}]})",
                 bad + "objects[0]: key 'attrs' not found");
  expect_refused(
      R"({"format": 1, "objects": [{"kind": 1, "schema": "s", "name": "t", "attrs": {}}]})",
      bad + "objects[0].kind: type must be string");
  expect_refused(
      R"({"format": 1, "objects": [{"kind": "t", "schema": "s", "name": "t", "attrs": {"a": 1}}]})",
      bad + "objects[0].attrs.a: type must be string");
  expect_refused(R"({"format": 1, "objects": [1]})", bad + "objects[0]: not an object");
  expect_refused(R"({"format": 1, "objects": [], "unknown_kinds": "x"})",
                 bad + "unknown_kinds: type must be array");
  expect_refused(R"({"format": 1, "objects": [], "unknown_kinds": [1]})",
                 bad + "unknown_kinds: type must be string");
}

// validate drops live objects equal to the expected ones as it reads them: what it finds is
// what diffing the description read in full finds.
SchemaDescription two_tables() {
  SchemaDescription d;
  d.objects = {
      test::object("table", "public", "", "a", {{"sql_name", "public.a"}}),
      test::object("column", "public", "a", "id", {{"type", "bigint"}, {"position", "1"}}),
      test::object("table", "public", "", "b", {{"sql_name", "public.b"}}),
      test::object("column", "public", "b", "id", {{"type", "integer"}, {"position", "1"}})};
  canonicalize(d);
  return d;
}

TEST(ExpectedMatcher, KeepsNothingOfASchemaWithoutDrift) {
  const auto expected = two_tables();
  ExpectedMatcher m(expected);
  SchemaDescription kept;
  for (const auto& o : two_tables().objects)
    if (m.keep(o)) kept.objects.push_back(o);
  EXPECT_TRUE(kept.objects.empty());
  EXPECT_TRUE(m.matches_all(kept));
  EXPECT_TRUE(diff_schemas(expected, two_tables()).empty());
  // Restored, it is the description as read.
  m.restore(kept);
  EXPECT_EQ(kept, two_tables());
}

TEST(ExpectedMatcher, RestoresTheFullDescriptionWhenThereIsDrift) {
  const auto expected = two_tables();
  auto live = two_tables();
  const auto find = [&](const std::string& kind, const std::string& name) {
    return std::find_if(live.objects.begin(), live.objects.end(), [&](const SchemaObject& o) {
      return o.kind == kind && o.display() == name;
    });
  };
  find("column", "public.a.id")->attrs["type"] = "integer";  // changed
  live.objects.erase(find("table", "public.b"));             // missing (its column stays)
  live.objects.push_back(test::object("column", "public", "b", "note", {{"type", "text"}}));
  canonicalize(live);
  ExpectedMatcher m(expected);
  SchemaDescription kept;
  // Half read before the matcher was ready (kept), half after.
  for (std::size_t i = 0; i < live.objects.size(); ++i)
    if (i < 2 || m.keep(live.objects[i])) kept.objects.push_back(live.objects[i]);
  m.sweep(kept);
  EXPECT_FALSE(m.matches_all(kept));
  m.restore(kept);
  EXPECT_EQ(kept, live);
  EXPECT_EQ(diff_schemas(expected, kept), diff_schemas(expected, live));
  EXPECT_FALSE(diff_schemas(expected, kept).empty());
}

TEST(ExpectedMatcher, AnExpectedObjectMissingLiveIsDrift) {
  const auto expected = two_tables();
  auto live = two_tables();
  live.objects.pop_back();
  ExpectedMatcher m(expected);
  SchemaDescription kept;
  for (const auto& o : live.objects)
    if (m.keep(o)) kept.objects.push_back(o);
  EXPECT_TRUE(kept.objects.empty());
  EXPECT_FALSE(m.matches_all(kept));
  m.restore(kept);
  EXPECT_EQ(kept, live);
}

TEST(ExpectedMatcher, RepeatedExpectedKeysAreNeverCalledAMatch) {
  auto expected = two_tables();
  expected.objects.push_back(expected.objects.front());  // a hand-written file, twice the key
  ExpectedMatcher m(expected);
  SchemaDescription kept;
  for (const auto& o : two_tables().objects)
    if (m.keep(o)) kept.objects.push_back(o);
  EXPECT_FALSE(m.matches_all(kept));  // the differ decides
  m.restore(kept);
  EXPECT_EQ(kept, two_tables());
}

}  // namespace
}  // namespace stepwise
