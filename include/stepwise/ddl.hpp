#pragma once
// DDL generation, kept apart from drift matching (drift.hpp) and script assembly
// (fix_script.hpp): the statements that create, drop or alter one described object. Pure.
#include <string>
#include <string_view>

#include "stepwise/schema.hpp"

namespace stepwise {

// The statement(s) that create one object with everything describe models about it: options,
// owner, privileges, comments (a table with its columns from `d`). `role` names the reference
// role (owner of objects without an "owner" attribute); empty: CURRENT_USER. `initial_acl`: the
// privileges the object gets when created (default privileges); empty: the defaults.
[[nodiscard]] std::string create_sql(const SchemaObject& o, const SchemaDescription& d,
                                     const std::string& role = {},
                                     const std::string& initial_acl = {});
// Only the CREATE statement (no owner, privileges or comments).
[[nodiscard]] std::string bare_create_sql(const SchemaObject& o, const SchemaDescription& d);
// "col type [COLLATE ..] [COMPRESSION ..] [GENERATED ..] [DEFAULT ..] [NOT NULL]".
[[nodiscard]] std::string column_sql(const SchemaObject& column);
[[nodiscard]] std::string drop_sql(const SchemaObject& o);
// Owner, privileges and comment of a freshly created object (and a table's column settings).
[[nodiscard]] std::string decorations_sql(const SchemaObject& o, const SchemaDescription& d,
                                          const std::string& role,
                                          const std::string& initial_acl = {});
// Statements giving the live object `a` the expected privileges of `e` (both may be the
// defaults: attribute "acl" absent).
[[nodiscard]] std::string acl_fix_sql(const SchemaObject& e, const SchemaObject& a,
                                      const std::string& role);
// ALTER DEFAULT PRIVILEGES statements giving `a` (nullptr: no entry) the privileges of `e`.
[[nodiscard]] std::string default_acl_fix_sql(const SchemaObject& e, const SchemaObject* a,
                                              const std::string& role);
// COMMENT ON ... IS ...; (NULL when `o` has no comment).
[[nodiscard]] std::string comment_sql(const SchemaObject& o);
// ALTER ... OWNER TO ...; `role` stands for an absent owner attribute.
[[nodiscard]] std::string owner_sql(const SchemaObject& o, const std::string& role);
// "\"name\"" with embedded quotes doubled.
[[nodiscard]] std::string quote_identifier(std::string_view name);

}  // namespace stepwise
