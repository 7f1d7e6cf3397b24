#include "stepwise/releases.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>

#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

const Release* Releases::find(std::string_view name) const {
  for (const auto& r : releases_)
    if (r.name == name) return &r;
  return nullptr;
}

const Release* Releases::with_schema(const Version& v) const {
  for (const auto& r : releases_)
    if (r.schema == v) return &r;
  return nullptr;
}

namespace {
// A positive version: a JSON integer, or a JSON string of digits (for versions of any length,
// such as 20-digit timestamps that a JSON reader may not hold as an integer).
std::optional<Version> as_version(const nlohmann::json& j) {
  std::optional<Version> v;
  if (j.is_number_unsigned())
    v = Version(j.get<std::uint64_t>());
  else if (j.is_number_integer() && j.get<std::int64_t>() > 0)
    v = Version(j.get<std::int64_t>());
  else if (j.is_string())
    v = Version::parse(j.get_ref<const std::string&>());
  if (v && v->is_zero()) v.reset();
  return v;
}
}  // namespace

Releases parse_releases(std::string_view text, const MigrationSet* set) {
  const std::string file(kReleasesFile);
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // nlohmann quotes the last token read, which may be huge: keep the line short.
    throw SourceError(fmt::format("{}: not valid JSON: {}", file, one_line(e.what(), 200)));
  }
  if (!root.is_object() || !root.contains("releases") || !root["releases"].is_array())
    throw SourceError(fmt::format("{}: expected an object with a \"releases\" array", file));
  std::vector<std::string> problems;
  std::vector<Release> out;
  std::set<std::string> names;
  std::size_t index = 0;
  for (const auto& item : root["releases"]) {
    ++index;
    std::string label = fmt::format("release #{}", index);
    if (!item.is_object()) {
      problems.push_back(fmt::format("{}: {}: expected an object", file, label));
      continue;
    }
    Release r;
    if (item.contains("name") && item["name"].is_string() &&
        !item["name"].get<std::string>().empty()) {
      r.name = item["name"].get<std::string>();
      label = fmt::format("release {}", printable(r.name, 40));
      if (!names.insert(r.name).second)
        problems.push_back(
            fmt::format("{}: {}: field \"name\": duplicate release name", file, label));
    } else {
      problems.push_back(
          fmt::format("{}: {}: field \"name\": missing or not a non-empty string", file, label));
    }
    for (const auto& [key, value] : item.items()) {
      if (key != "name" && key != "schema" && key != "min_schema" && key != "notes")
        problems.push_back(
            fmt::format("{}: {}: unknown field {} (known: name, schema, min_schema, notes)", file,
                        label, printable(key, 40)));
    }
    const auto field = [&](const char* key, Version* dest) {
      if (!item.contains(key)) {
        problems.push_back(fmt::format("{}: {}: field \"{}\": missing", file, label, key));
        return;
      }
      const auto v = as_version(item[key]);
      if (!v) {
        problems.push_back(
            fmt::format("{}: {}: field \"{}\": {} is not a positive version (an integer, or a "
                        "string of digits)",
                        file, label, key, printable(item[key].dump(), 40)));
        return;
      }
      if (set != nullptr && set->find(*v) == nullptr) {
        problems.push_back(fmt::format("{}: {}: field \"{}\": version {} is not a known migration",
                                       file, label, key, *v));
        return;
      }
      *dest = *v;
    };
    field("schema", &r.schema);
    field("min_schema", &r.min_schema);
    if (!r.schema.is_zero() && !r.min_schema.is_zero() && r.min_schema > r.schema)
      problems.push_back(fmt::format("{}: {}: field \"min_schema\": {} is newer than its schema {}",
                                     file, label, r.min_schema, r.schema));
    if (!out.empty() && !r.schema.is_zero() && !out.back().schema.is_zero() &&
        r.schema <= out.back().schema)
      problems.push_back(
          fmt::format("{}: {}: field \"schema\": {} is not newer than the previous release's {} "
                      "(releases must be "
                      "in order)",
                      file, label, r.schema, out.back().schema));
    if (!out.empty() && !r.min_schema.is_zero() && !out.back().min_schema.is_zero() &&
        r.min_schema < out.back().min_schema)
      problems.push_back(
          fmt::format("{}: {}: field \"min_schema\": {} is older than the previous release's {}",
                      file, label, r.min_schema, out.back().min_schema));
    out.push_back(std::move(r));
  }
  if (out.empty() && problems.empty())
    problems.push_back(fmt::format("{}: the \"releases\" array is empty", file));
  if (!problems.empty()) throw SourceError(fmt::format("{}", fmt::join(problems, "\n")));
  return Releases(std::move(out));
}

}  // namespace stepwise
