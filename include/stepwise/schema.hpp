#pragma once
// A canonical description of a live schema: a sorted list of objects, each identified by kind,
// schema, parent table and name, with plain text attributes. Attributes whose name starts with
// "sql_" are the server-quoted identifiers used to write fix SQL; they never count as drift.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/attr_map.hpp"

namespace stepwise {

// Kinds, in the order they are listed and created (dropped in the reverse order): a function
// before the views and triggers that call it.
inline constexpr std::string_view kObjectKinds[] = {
    "extension", "schema",     "collation", "type",          "sequence",    "table",
    "column",    "constraint", "index",     "statistics",    "function",    "view",
    "trigger",   "rule",       "policy",    "event_trigger", "publication", "default_acl"};
// Position of a kind in kObjectKinds.
[[nodiscard]] int kind_rank(std::string_view kind);

struct SchemaObject {
  std::string kind;
  std::string schema;
  std::string table;  // parent table for column, constraint, index, trigger, policy
  std::string name;
  AttrMap attrs;  // std::map-like (attr_map.hpp)

  // "public.tasks.status" / "public.tasks": how findings name the object.
  [[nodiscard]] std::string display() const;
  [[nodiscard]] std::string attr(const std::string& key) const;
  bool operator==(const SchemaObject&) const = default;
};

struct SchemaDescription {
  std::vector<SchemaObject> objects;  // canonical order after canonicalize()
  // Kinds the server could not report (e.g. a catalog CockroachDB does not implement): their
  // objects are unknown, never missing.
  std::vector<std::string> unknown_kinds;
  // The role objects are owned by when they carry no "owner" attribute (the owner of stepwise's
  // log table, else the database's owner). Known for live descriptions only; not in the JSON.
  std::string reference_role;
  bool operator==(const SchemaDescription&) const = default;
};

// Sorts objects (kind order, then schema, table, name), drops empty attributes and collapses
// white space runs in view definitions.
void canonicalize(SchemaDescription& d);
// canonicalize()'s part for one object: drops empty attributes, collapses white space runs in
// a view's definition.
void canonicalize_object(SchemaObject& o);

// Stable, sorted JSON: diffable with plain `diff`. Format documented in docs/describe.md.
[[nodiscard]] std::string to_json(const SchemaDescription& d);
// Throws SourceError naming `origin` when the text is not a description.
[[nodiscard]] SchemaDescription parse_schema_json(std::string_view text, std::string_view origin);
// One replayable SQL script (describe --output sql; src/core/schema_sql.cpp, statements: ddl.hpp).
[[nodiscard]] std::string to_sql_text(const SchemaDescription& d);

}  // namespace stepwise
