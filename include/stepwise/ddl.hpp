#pragma once
// DDL: the statements that create, drop, rename and alter one described object, per object
// kind, and the owner, privileges and comment around it. Pure. Which objects differ is drift's
// (drift.hpp); putting the statements of many findings in order is the fix script's
// (fix_script.hpp). Names come from the objects' server-quoted sql_* attributes; a name taken
// from anywhere else goes through quote_identifier.
#include <optional>
#include <string>
#include <string_view>

#include "stepwise/schema.hpp"

namespace stepwise::ddl {

// --- names and literals
// "\"name\"" with embedded quotes doubled.
[[nodiscard]] std::string quote_identifier(std::string_view name);
// "a.b.c" -> "\"a\".\"b\".\"c\"".
[[nodiscard]] std::string quote_dotted(std::string_view name);
// 'text' with quotes doubled (standard_conforming_strings).
[[nodiscard]] std::string literal(std::string_view text);
// A literal whatever standard_conforming_strings says: E'...' when it holds a backslash.
[[nodiscard]] std::string escaped_literal(std::string_view text);

// --- any kind: one row per kind (kObjectKinds) says how it is named, dropped and owned, and
// which functions create and alter it.
// The words naming `o` in ALTER / DROP / COMMENT ON: "TABLE", "MATERIALIZED VIEW", "DOMAIN" ...
[[nodiscard]] std::string keyword(const SchemaObject& o);
// Only the CREATE statement(s): no owner, privileges or comments (a table with its columns
// from `d`).
[[nodiscard]] std::string create_statement(const SchemaObject& o, const SchemaDescription& d);
// The statement(s) that create one object with everything describe models about it: options,
// owner, privileges, comments (a table with its columns from `d`). `role` names the reference
// role (owner of objects without an "owner" attribute); empty: CURRENT_USER. `initial_acl`: the
// privileges the object gets when created (default privileges); empty: the defaults.
[[nodiscard]] std::string create(const SchemaObject& o, const SchemaDescription& d,
                                 const std::string& role = {}, const std::string& initial_acl = {});
// Owner, privileges and comment of a freshly created object (and a table's column settings).
[[nodiscard]] std::string decorations(const SchemaObject& o, const SchemaDescription& d,
                                      const std::string& role, const std::string& initial_acl = {});
// DROP (a default_acl entry: back to the defaults, for `role` when it names none).
[[nodiscard]] std::string drop(const SchemaObject& o, const std::string& role = {});
// Gives the live object `a` the name `name` (unquoted; quoted here).
[[nodiscard]] std::string rename(const SchemaObject& a, std::string_view name);
// ALTER ... OWNER TO ...; `role` stands for an absent owner attribute.
[[nodiscard]] std::string owner(const SchemaObject& o, const std::string& role);
// COMMENT ON ... IS ...; (NULL when `o` has no comment).
[[nodiscard]] std::string comment(const SchemaObject& o);
// The statements turning field `field` of the live object `a` into the expected `e`'s, in
// place (possibly none); nullopt when the kind cannot change that field in place (the object
// is recreated).
[[nodiscard]] std::optional<std::string> alter(const SchemaObject& e, const SchemaObject& a,
                                               const std::string& field);

// --- privileges
// Statements giving the live object `a` the expected privileges of `e` (both may be the
// defaults: attribute "acl" absent).
[[nodiscard]] std::string grants(const SchemaObject& e, const SchemaObject& a,
                                 const std::string& role);
// ALTER DEFAULT PRIVILEGES statements giving `a` (nullptr: no entry) the privileges of `e`.
[[nodiscard]] std::string default_privileges(const SchemaObject& e, const SchemaObject* a,
                                             const std::string& role);
// The privileges a new object gets from the default privileges in `live` (ALTER DEFAULT
// PRIVILEGES of the reference role), "" when none apply.
[[nodiscard]] std::string initial_acl(const SchemaObject& o, const SchemaDescription& live);

// --- per kind, what alter() does not cover
// "col type [COLLATE ..] [COMPRESSION ..] [GENERATED ..] [DEFAULT ..] [NOT NULL]".
[[nodiscard]] std::string column_definition(const SchemaObject& column);
// ALTER SEQUENCE ... OWNED BY the column in "owned_by" (NONE when it has none).
[[nodiscard]] std::string sequence_owned_by(const SchemaObject& sequence);
// An enum's labels turned into the expected ones: RENAME VALUE for one renamed label, ADD VALUE
// for labels only added, else the type rebuilt: renamed away, created again (`create_text`),
// every column of it in `expected` converted, the old type dropped.
[[nodiscard]] std::string enum_labels(const SchemaObject& e, const SchemaObject& a,
                                      const SchemaDescription& expected,
                                      const std::string& create_text);

}  // namespace stepwise::ddl
