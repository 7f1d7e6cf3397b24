#pragma once
// Internal to the DDL module (src/core/ddl*.cpp): the per-kind functions its kind table points
// at, and the list splitting they share. Not part of the interface (that is stepwise/ddl.hpp).
#include <optional>
#include <string>
#include <vector>

#include "stepwise/schema.hpp"

namespace stepwise::ddl::detail {

// "a,b,,c" -> {a, b, "", c} (a trailing empty piece dropped).
std::vector<std::string> split(const std::string& s, char sep);
// A definition without its trailing ';', blanks and newlines.
std::string strip_trailing(std::string s);
// RESET (...) / SET (...) turning reloptions `have_s` into `want_s`.
std::string options_fix(const std::string& prefix, const std::string& want_s,
                        const std::string& have_s);
// "ENABLE", "DISABLE", "ENABLE REPLICA", "ENABLE ALWAYS" for an "enabled" attribute.
std::string enable_word(const std::string& enabled);

// CREATE per kind (without owner, privileges and comment).
std::string create_extension(const SchemaObject& o, const SchemaDescription& d);
std::string create_schema(const SchemaObject& o, const SchemaDescription& d);
std::string create_collation(const SchemaObject& o, const SchemaDescription& d);
std::string create_type(const SchemaObject& o, const SchemaDescription& d);
std::string create_sequence(const SchemaObject& o, const SchemaDescription& d);
std::string create_table(const SchemaObject& o, const SchemaDescription& d);
std::string create_column(const SchemaObject& o, const SchemaDescription& d);
std::string create_constraint(const SchemaObject& o, const SchemaDescription& d);
std::string create_index(const SchemaObject& o, const SchemaDescription& d);
std::string create_from_definition(const SchemaObject& o, const SchemaDescription& d);
std::string create_function(const SchemaObject& o, const SchemaDescription& d);
std::string create_view(const SchemaObject& o, const SchemaDescription& d);
std::string create_policy(const SchemaObject& o, const SchemaDescription& d);
std::string create_event_trigger(const SchemaObject& o, const SchemaDescription& d);
std::string create_publication(const SchemaObject& o, const SchemaDescription& d);

// In-place ALTER per kind: the statements for one field, nullopt when it cannot change in place.
using Field = std::string;
std::optional<std::string> alter_extension(const SchemaObject& e, const SchemaObject& a,
                                           const Field& f);
std::optional<std::string> alter_type(const SchemaObject& e, const SchemaObject& a, const Field& f);
std::optional<std::string> alter_sequence(const SchemaObject& e, const SchemaObject& a,
                                          const Field& f);
std::optional<std::string> alter_table(const SchemaObject& e, const SchemaObject& a,
                                       const Field& f);
std::optional<std::string> alter_column(const SchemaObject& e, const SchemaObject& a,
                                        const Field& f);
std::optional<std::string> alter_constraint(const SchemaObject& e, const SchemaObject& a,
                                            const Field& f);
std::optional<std::string> alter_index(const SchemaObject& e, const SchemaObject& a,
                                       const Field& f);
std::optional<std::string> alter_statistics(const SchemaObject& e, const SchemaObject& a,
                                            const Field& f);
std::optional<std::string> alter_function(const SchemaObject& e, const SchemaObject& a,
                                          const Field& f);
std::optional<std::string> alter_view(const SchemaObject& e, const SchemaObject& a, const Field& f);
std::optional<std::string> alter_trigger(const SchemaObject& e, const SchemaObject& a,
                                         const Field& f);
std::optional<std::string> alter_rule(const SchemaObject& e, const SchemaObject& a, const Field& f);
std::optional<std::string> alter_policy(const SchemaObject& e, const SchemaObject& a,
                                        const Field& f);
std::optional<std::string> alter_event_trigger(const SchemaObject& e, const SchemaObject& a,
                                               const Field& f);
std::optional<std::string> alter_publication(const SchemaObject& e, const SchemaObject& a,
                                             const Field& f);

// GRANT / REVOKE giving `e` its privileges from `have_acl` (empty: the defaults of its kind).
std::string grants_from(const SchemaObject& e, const std::string& have_acl,
                        const std::string& role);
// ALTER DEFAULT PRIVILEGES turning `a`'s entry (nullptr: none) into `e`'s with `want_acl`.
std::string default_privileges_to(const SchemaObject& e, const std::string& want_acl,
                                  const SchemaObject* a, const std::string& role);

// A column's settings that CREATE TABLE / ADD COLUMN cannot say (statistics, storage, comment,
// privileges), each on a line of its own starting with '\n'.
std::string column_settings(const SchemaObject& c);

}  // namespace stepwise::ddl::detail
