#pragma once
// Described objects built by hand for the unit tests of drift, the fix script and the DDL module.
#include <map>
#include <string>

#include "stepwise/schema.hpp"

namespace stepwise::test {

using Attrs = std::map<std::string, std::string>;

inline SchemaObject object(std::string kind, std::string schema, std::string table,
                           std::string name, Attrs attrs) {
  SchemaObject o;
  o.kind = std::move(kind);
  o.schema = std::move(schema);
  o.table = std::move(table);
  o.name = std::move(name);
  o.attrs = std::move(attrs);
  return o;
}

// `o` with `changes` (an empty value removes the attribute).
inline SchemaObject with(const SchemaObject& o, const Attrs& changes) {
  Attrs attrs;
  for (const auto& [k, v] : o.attrs) attrs[k] = v;
  for (const auto& [k, v] : changes)
    if (v.empty())
      attrs.erase(k);
    else
      attrs[k] = v;
  return object(o.kind, o.schema, o.table, o.name, attrs);
}

}  // namespace stepwise::test
