#include "stepwise/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <vector>

#include "stepwise/errors.hpp"

namespace stepwise {

const std::string* intern_attr_key(std::string_view key) {
  // The attributes describe() writes: found without a lock (the expected description is read
  // while the live one is built). Others (hand-written files) are kept once each.
  static const std::vector<std::string> known = [] {
    std::vector<std::string> k{"acl",
                               "all_tables",
                               "attributes",
                               "base_type",
                               "cache",
                               "clustered",
                               "collation",
                               "command",
                               "comment",
                               "compression",
                               "constraints",
                               "cycle",
                               "default",
                               "definition",
                               "depends_on",
                               "deterministic",
                               "enabled",
                               "event",
                               "force_row_security",
                               "function",
                               "generated",
                               "icu_rules",
                               "identity",
                               "identity_options",
                               "increment",
                               "inherits",
                               "kind",
                               "labels",
                               "lc_collate",
                               "lc_ctype",
                               "locale",
                               "materialized",
                               "max",
                               "min",
                               "not_null",
                               "not_valid",
                               "objects",
                               "options",
                               "owned_by",
                               "owner",
                               "partition_bound",
                               "partition_key",
                               "partition_of",
                               "partitioned",
                               "permissive",
                               "persistence",
                               "position",
                               "provider",
                               "publish",
                               "replica_identity",
                               "roles",
                               "row_security",
                               "sql_name",
                               "sql_owner",
                               "sql_role",
                               "sql_schema",
                               "sql_table",
                               "start",
                               "statistics",
                               "storage",
                               "tables",
                               "tags",
                               "type",
                               "using",
                               "valid",
                               "version",
                               "via_root",
                               "with_check"};
    std::sort(k.begin(), k.end());
    k.erase(std::unique(k.begin(), k.end()), k.end());
    return k;
  }();
  const auto it = std::lower_bound(known.begin(), known.end(), key);
  if (it != known.end() && *it == key) return &*it;
  static std::mutex mutex;
  static std::set<std::string, std::less<>> others;
  const std::lock_guard lock(mutex);
  auto o = others.find(key);
  if (o == others.end()) o = others.emplace(key).first;
  return &*o;
}

int kind_rank(std::string_view kind) {
  for (std::size_t i = 0; i < std::size(kObjectKinds); ++i)
    if (kObjectKinds[i] == kind) return static_cast<int>(i);
  return static_cast<int>(std::size(kObjectKinds));
}

namespace {

std::string collapse_spaces(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  return out;
}
}  // namespace

std::string SchemaObject::display() const {
  if (kind == "schema" || kind == "extension" || schema.empty()) return name;
  if (!table.empty()) return fmt::format("{}.{}.{}", schema, table, name);
  return fmt::format("{}.{}", schema, name);
}

std::string SchemaObject::attr(const std::string& key) const {
  const auto it = attrs.find(key);
  return it == attrs.end() ? std::string() : it->second;
}

void canonicalize_object(SchemaObject& o) {
  o.attrs.erase_if([](const auto& kv) { return kv.second.empty(); });
  if (o.kind == "view") {
    const auto def = o.attrs.find("definition");
    if (def != o.attrs.end()) def->second = collapse_spaces(def->second);
  }
}

void canonicalize(SchemaDescription& d) {
  for (auto& o : d.objects) canonicalize_object(o);
  // Ranks computed once and names compared in place: a schema of 10,000 tables has some
  // 80,000 objects, and copying four strings per comparison dominated validate's client time.
  std::vector<std::pair<int, std::size_t>> order;
  order.reserve(d.objects.size());
  for (std::size_t i = 0; i < d.objects.size(); ++i)
    order.emplace_back(kind_rank(d.objects[i].kind), i);
  // By kind first (integers), then each kind's run by name unless it is in order already: an
  // expected file is written sorted, and the catalog queries ORDER BY what we sort on.
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  const auto by_name = [&](const auto& x, const auto& y) {
    const auto& a = d.objects[x.second];
    const auto& b = d.objects[y.second];
    return std::tie(a.schema, a.table, a.name) < std::tie(b.schema, b.table, b.name);
  };
  for (auto run = order.begin(); run != order.end();) {
    const auto end =
        std::find_if(run, order.end(), [&](const auto& x) { return x.first != run->first; });
    if (!std::is_sorted(run, end, by_name)) std::sort(run, end, by_name);
    run = end;
  }
  // The permutation applied in place (cycle by cycle): no second vector of objects.
  std::vector<std::size_t> from(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) from[i] = order[i].second;
  std::vector<std::pair<int, std::size_t>>().swap(order);
  for (std::size_t i = 0; i < from.size(); ++i) {
    if (from[i] == i) continue;
    SchemaObject held = std::move(d.objects[i]);
    std::size_t j = i;
    while (from[j] != i) {
      d.objects[j] = std::move(d.objects[from[j]]);
      const auto next = from[j];
      from[j] = j;
      j = next;
    }
    d.objects[j] = std::move(held);
    from[j] = j;
  }
  std::sort(d.unknown_kinds.begin(), d.unknown_kinds.end());
}

std::string to_json(const SchemaDescription& d) {
  // nlohmann's default object type is a std::map: keys come out sorted.
  nlohmann::json objects = nlohmann::json::array();
  for (const auto& o : d.objects) {
    nlohmann::json j = {{"kind", o.kind}, {"schema", o.schema}, {"name", o.name}};
    if (!o.table.empty()) j["table"] = o.table;
    nlohmann::json attrs = nlohmann::json::object();
    for (const auto& [k, v] : o.attrs) attrs[k] = v;
    j["attrs"] = std::move(attrs);
    objects.push_back(std::move(j));
  }
  nlohmann::json doc = {{"format", 1}, {"objects", std::move(objects)}};
  if (!d.unknown_kinds.empty()) doc["unknown_kinds"] = d.unknown_kinds;
  return doc.dump(1) + "\n";
}

namespace {

// Reads a description straight into SchemaObjects as the parser walks the text (no DOM: at
// 10,000 tables the DOM of the 18 MB text took more memory than the description itself).
// Accepts what the DOM reading accepted: an object with "format": 1 and "objects", an array
// of objects each with string "kind", "schema", "name", an optional string "table" and an
// "attrs" object of strings, and an optional "unknown_kinds" array of strings; other members
// are ignored; of repeated members the last counts.
class DescriptionReader final : public nlohmann::json::json_sax_t {
 public:
  explicit DescriptionReader(SchemaDescription& d) : d_(d) {}

  [[nodiscard]] bool is_description() const {
    return top_is_object_ && format_one_ && objects_is_array_;
  }
  [[nodiscard]] const std::string& error() const { return error_; }

  bool null() override { return scalar(Scalar::kNull, nullptr); }
  bool boolean(bool) override { return scalar(Scalar::kOther, nullptr); }
  bool number_integer(number_integer_t v) override { return scalar(number(v == 1), nullptr); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(number(v == 1), nullptr); }
  bool number_float(number_float_t v, const string_t&) override {
    return scalar(number(v >= 1.0 && v < 2.0), nullptr);  // value("format", 0) truncated it
  }
  bool string(string_t& v) override { return scalar(Scalar::kString, &v); }
  bool binary(binary_t&) override { return scalar(Scalar::kOther, nullptr); }

  bool start_object(std::size_t) override {
    container(/*object=*/true);
    ++depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    container(/*object=*/false);
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    if (depth_ == 3) in_attrs_ = false;
    if (in_objects_ && !broken_ && depth_ == 2) {
      for (const auto& [bit, name] : {std::pair{kKind, "kind"}, std::pair{kSchema, "schema"},
                                      std::pair{kName, "name"}, std::pair{kAttrs, "attrs"}})
        if ((have_ & bit) == 0) {
          semantic(fmt::format("objects[{}]: key '{}' not found", d_.objects.size(), name));
          return true;
        }
      object_.attrs.finish();
      d_.objects.push_back(std::move(object_));
      object_ = SchemaObject();
    }
    return true;
  }
  bool end_array() override {
    --depth_;
    if (depth_ == 1) in_objects_ = in_unknown_ = false;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1 && top_is_object_) top_key_ = std::move(k);
    if (!in_objects_ || broken_) return true;
    if (depth_ == 3) object_key_ = std::move(k);
    if (depth_ == 4 && in_attrs_) attr_key_ = intern_attr_key(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) override {
    error_ = e.what();
    return false;
  }

 private:
  enum class Scalar { kNull, kOne, kOtherNumber, kString, kOther };
  static constexpr unsigned kKind = 1, kSchema = 2, kName = 4, kAttrs = 8;
  static Scalar number(bool one) { return one ? Scalar::kOne : Scalar::kOtherNumber; }
  static bool is_field(const std::string& k) {
    return k == "kind" || k == "schema" || k == "name" || k == "table";
  }

  void semantic(std::string why) {
    if (!broken_) error_ = std::move(why);
    broken_ = true;
  }

  // A member value of the top-level object.
  void top_value(bool is_array, bool is_format_one) {
    if (top_key_ == "format") format_one_ = is_format_one;
    if (top_key_ == "objects") {
      objects_is_array_ = is_array;
      in_objects_ = is_array;
      if (is_array && !d_.objects.empty()) d_.objects.clear();
    }
    if (top_key_ == "unknown_kinds") {
      in_unknown_ = is_array;
      if (is_array)
        d_.unknown_kinds.clear();
      else
        semantic("unknown_kinds: type must be array");
    }
  }

  void container(bool object) {
    if (depth_ == 0) {
      top_is_object_ = object;
      return;
    }
    if (!top_is_object_) return;
    if (depth_ == 1) return top_value(!object, false);
    if (in_unknown_ && depth_ == 2) return semantic("unknown_kinds: type must be string");
    if (!in_objects_ || broken_) return;
    if (depth_ == 2) {
      if (!object) return semantic(fmt::format("objects[{}]: not an object", d_.objects.size()));
      have_ = 0;
      object_ = SchemaObject();
      return;
    }
    if (depth_ == 3) {
      if (object_key_ == "attrs" && object) {
        have_ |= kAttrs;
        in_attrs_ = true;
        object_.attrs.clear();
        return;
      }
      if (object_key_ == "attrs" || is_field(object_key_))
        semantic(fmt::format("objects[{}].{}: wrong type", d_.objects.size(), object_key_));
      return;
    }
    if (depth_ == 4 && in_attrs_)
      semantic(
          fmt::format("objects[{}].attrs.{}: type must be string", d_.objects.size(), *attr_key_));
  }

  bool scalar(Scalar t, string_t* v) {
    if (depth_ == 0) return true;  // a document that is not an object
    if (!top_is_object_) return true;
    if (depth_ == 1) {
      top_value(false, t == Scalar::kOne);
      return true;
    }
    if (in_unknown_ && depth_ == 2) {
      if (t != Scalar::kString) semantic("unknown_kinds: type must be string");
      if (!broken_) d_.unknown_kinds.emplace_back(*v);
      return true;
    }
    if (!in_objects_ || broken_) return true;
    if (depth_ == 2) {
      semantic(fmt::format("objects[{}]: not an object", d_.objects.size()));
    } else if (depth_ == 3) {
      if (object_key_ == "attrs") {
        if (t != Scalar::kNull)
          return semantic(fmt::format("objects[{}].attrs: not an object", d_.objects.size())), true;
        have_ |= kAttrs;  // null: no attributes
        object_.attrs.clear();
        return true;
      }
      if (!is_field(object_key_)) return true;
      if (t != Scalar::kString)
        return semantic(fmt::format("objects[{}].{}: type must be string", d_.objects.size(),
                                    object_key_)),
               true;
      if (object_key_ == "kind") object_.kind.assign(*v), have_ |= kKind;
      if (object_key_ == "schema") object_.schema.assign(*v), have_ |= kSchema;
      if (object_key_ == "name") object_.name.assign(*v), have_ |= kName;
      if (object_key_ == "table") object_.table.assign(*v);
    } else if (depth_ == 4 && in_attrs_) {
      if (t != Scalar::kString)
        return semantic(fmt::format("objects[{}].attrs.{}: type must be string", d_.objects.size(),
                                    *attr_key_)),
               true;
      object_.attrs.append_unsorted(*attr_key_, std::string(*v));
    }
    return true;
  }

  SchemaDescription& d_;
  int depth_ = 0;
  bool top_is_object_ = false, format_one_ = false, objects_is_array_ = false;
  bool in_objects_ = false, in_unknown_ = false, in_attrs_ = false, broken_ = false;
  std::string top_key_, object_key_;
  const std::string* attr_key_ = nullptr;
  SchemaObject object_;
  unsigned have_ = 0;
  std::string error_;
};

}  // namespace

SchemaDescription parse_schema_json(std::string_view text, std::string_view origin) {
  SchemaDescription d;
  {
    // Room for every object at once (an object has one "kind" member; an attribute called
    // "kind" only makes the guess larger): growing the vector would hold it twice.
    std::size_t guess = 0;
    for (auto p = text.find("\"kind\""); p != std::string_view::npos;
         p = text.find("\"kind\"", p + 6))
      ++guess;
    d.objects.reserve(guess);
    DescriptionReader reader(d);
    const bool parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &reader);
    if (!parsed)
      throw SourceError(fmt::format("{}: invalid schema description: {}", origin, reader.error()));
    if (!reader.is_description())
      throw SourceError(fmt::format("{}: not a stepwise schema description (format 1)", origin));
    if (!reader.error().empty())
      throw SourceError(fmt::format("{}: invalid schema description: {}", origin, reader.error()));
  }
  canonicalize(d);
  return d;
}

}  // namespace stepwise
