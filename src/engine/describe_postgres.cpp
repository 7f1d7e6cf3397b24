#include <fmt/format.h>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <exception>
#include <thread>

#include "stepwise/describe.hpp"
#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

// Every query returns (schema, table, name, attrs as a JSON object) and takes $1 = the schemas
// to describe (text[]) and $2 = "schema.relation" names to leave out (text[]).
struct KindQuery {
  const char* kind;
  const char* sql;
};

// Objects that belong to an extension are the extension's business, not the application's.
#define NOT_FROM_EXTENSION(classid, oid)                                            \
  " NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dx WHERE dx.classid = '" classid \
  "'::regclass AND dx.objid = " oid " AND dx.deptype = 'e') "

// A privilege list, "grantee=PRIV,PRIV*" items (the grantee quoted, "PUBLIC", or "(owner)" for
// the object's owner; * marks WITH GRANT OPTION) sorted and joined by spaces; "(none)" when
// empty. Compared as a set: the order of aclitems in the catalog does not count.
#define ACL_LIST(acl, owner)                                                                   \
  "COALESCE((SELECT string_agg(g, ' ' ORDER BY g) FROM (SELECT CASE WHEN x.grantee = 0 THEN "  \
  "'PUBLIC' WHEN x.grantee = " owner                                                           \
  " THEN '(owner)' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END || " \
  "'=' || string_agg(x.privilege_type || CASE WHEN x.is_grantable THEN '*' ELSE '' END, ',' "  \
  "ORDER BY x.privilege_type) AS g FROM pg_catalog.aclexplode(" acl                            \
  ") x GROUP BY x.grantee) s), '(none)')"
// The privileges when they are not the default ones for the kind (typ: acldefault's letter).
#define ACL_TEXT(acl, owner, typ)                                                   \
  " CASE WHEN " acl " IS NOT NULL THEN NULLIF(" ACL_LIST(acl, owner) ", " ACL_LIST( \
      "pg_catalog.acldefault('" typ "', " owner ")", owner) ") END "
// Owner (its name; dropped afterwards when it is the reference role) and its quoted name.
#define OWNER(owner)                            \
  " 'owner', pg_catalog.pg_get_userbyid(" owner \
  "), 'sql_owner', "                            \
  "pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(" owner ")) "
// A comment (the fix quotes it), read from pg_description by its index: obj_description and
// col_description are SQL functions, run by the function executor for every row (a tenth of
// the column query's time at 10,000 tables).
#define DESCRIPTION(oid, catalog, subid)                                            \
  "(SELECT ds.description FROM pg_catalog.pg_description ds WHERE ds.objoid = " oid \
  " AND ds.classoid = 'pg_catalog." catalog "'::pg_catalog.regclass AND ds.objsubid = " subid ")"
#define COMMENT(oid, catalog) " 'comment', " DESCRIPTION(oid, catalog, "0") " "

const KindQuery kQueries[] = {
    // Schemas.
    {"schema",
     "SELECT n.nspname, '', n.nspname, json_build_object('sql_name', "
     "quote_ident(n.nspname)," OWNER("n.nspowner") "," COMMENT(
         "n.oid", "pg_namespace") ", 'acl', " ACL_TEXT("n.nspacl", "n.nspowner",
                                                       "n") ")::text"
                                                            " FROM pg_catalog.pg_namespace n "
                                                            "WHERE n.nspname = ANY($1) AND "
                                                            "$2::text[] IS NOT NULL"
                                                            " AND" NOT_FROM_EXTENSION(
                                                                "pg_namespace",
                                                                "n.oid") "ORDER BY 1"},
    // Extensions installed into the described schemas.
    {"extension",
     "SELECT n.nspname, '', e.extname, json_build_object('sql_name', quote_ident(e.extname),"
     " 'sql_schema', quote_ident(n.nspname), 'version', e.extversion)::text"
     " FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
     " WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL ORDER BY 3"},
    // Tables, with partitioning and row-level security flags.
    {"table",
     "SELECT n.nspname, '', c.relname, json_build_object("
     " 'sql_name', format('%I.%I', n.nspname, c.relname),"
     " 'partitioned', CASE WHEN c.relkind = 'p' THEN 'true' END,"
     " 'persistence', CASE c.relpersistence WHEN 'u' THEN 'unlogged' END,"
     " 'partition_key', CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,"
     " 'partition_of', (SELECT format('%I.%I', pn.nspname, pc.relname) FROM pg_catalog.pg_inherits "
     "i"
     "   JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON "
     "pn.oid = pc.relnamespace"
     "   WHERE i.inhrelid = c.oid AND c.relispartition),"
     " 'partition_bound', CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, "
     "c.oid) END,"
     " 'row_security', CASE WHEN c.relrowsecurity THEN 'true' END,"
     " 'force_row_security', CASE WHEN c.relforcerowsecurity THEN 'true' END,"
     " 'options', pg_catalog.array_to_string(c.reloptions, ', '),"
     " 'replica_identity', CASE c.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'"
     "   WHEN 'i' THEN (SELECT 'index ' || pg_catalog.quote_ident(ic.relname) FROM "
     "pg_catalog.pg_index i"
     "   JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND "
     "i.indisreplident) END,"
     " 'inherits', CASE WHEN NOT c.relispartition THEN (SELECT string_agg(format('%I.%I', "
     "pn.nspname, pc.relname), ', '"
     "   ORDER BY i.inhseqno) FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class pc ON pc.oid "
     "= i.inhparent"
     "   JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) "
     "END," OWNER("c.relowner") "," COMMENT("c.oid", "pg_class") ", 'acl', " ACL_TEXT(
         "c.relacl", "c.relowner",
         "r") ")::text"
              " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
              " WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND n.nspname || '.' || "
              "c.relname <> "
              "ALL($2)"
              " AND" NOT_FROM_EXTENSION("pg_class", "c.oid") "ORDER BY 1, 3"},
    // Columns: type with modifiers, default, nullability, identity / generated, collation.
    {"column",
     "SELECT n.nspname, c.relname, a.attname, json_build_object("
     " 'sql_name', quote_ident(a.attname), 'sql_table', format('%I.%I', n.nspname, c.relname),"
     " 'position', (row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text,"
     " 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),"
     " 'not_null', CASE WHEN a.attnotnull THEN 'true' END,"
     // A default cannot refer to a column: deparsed without the table (opening it for each
     // default was most of the column query's time).
     " 'default', CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, 0) "
     "END,"
     " 'generated', CASE WHEN a.attgenerated = 's' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) "
     "END,"
     " 'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,"
     " 'collation', CASE WHEN a.attcollation <> t.typcollation THEN (SELECT format('%I.%I', "
     "cn.nspname, co.collname)"
     "   FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = "
     "co.collnamespace"
     "   WHERE co.oid = a.attcollation) END,"
     " 'statistics', CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::text END,"
     " 'storage', CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN "
     "'PLAIN'"
     "   WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END,"
     " 'compression', CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END,"
     " 'identity_options', (SELECT format('SEQUENCE NAME %I.%I START WITH %s INCREMENT BY %s "
     "MINVALUE %s "
     "MAXVALUE %s CACHE %s%s', sn.nspname, sc.relname, s.seqstart, s.seqincrement, s.seqmin, "
     "s.seqmax,"
     "   s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END) FROM pg_catalog.pg_depend dp"
     "   JOIN pg_catalog.pg_class sc ON sc.oid = dp.objid JOIN pg_catalog.pg_namespace sn ON "
     "sn.oid = sc.relnamespace"
     "   JOIN pg_catalog.pg_sequence s ON s.seqrelid = sc.oid"
     "   WHERE a.attidentity <> '' AND dp.classid = 'pg_class'::regclass AND dp.refclassid = "
     "'pg_class'::regclass"
     "   AND dp.refobjid = c.oid AND dp.refobjsubid = a.attnum AND dp.deptype = 'i' AND sc.relkind "
     "= 'S'),"
     " 'comment', " DESCRIPTION(
         "c.oid", "pg_class",
         "a.attnum") ","
                     " 'acl', " ACL_TEXT("a.attacl", "c.relowner",
                                         "c") ")::text"
                                              " FROM pg_catalog.pg_attribute a JOIN "
                                              "pg_catalog.pg_class c ON c.oid = a.attrelid"
                                              " JOIN pg_catalog.pg_namespace n ON n.oid = "
                                              "c.relnamespace JOIN pg_catalog.pg_type t "
                                              "ON t.oid "
                                              "= a.atttypid"
                                              " LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = "
                                              "a.attrelid AND d.adnum = a.attnum"
                                              " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND "
                                              "NOT a.attisdropped AND (NOT "
                                              "c.relispartition OR a.attislocal) AND "
                                              "n.nspname = "
                                              "ANY($1)"
                                              " AND n.nspname || '.' || c.relname <> ALL($2) "
                                              "AND" NOT_FROM_EXTENSION(
                                                  "pg_class", "c.oid") "ORDER BY 1, 2, a.attnum"},
    // Constraints: primary, foreign (with actions), unique, check, exclusion. Constraints a
    // partition inherits from its parent are the parent's.
    {"constraint",
     "SELECT n.nspname, c.relname, co.conname, json_build_object("
     " 'sql_name', quote_ident(co.conname), 'sql_table', format('%I.%I', n.nspname, c.relname),"
     " 'type', CASE co.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key' WHEN 'u' "
     "THEN 'unique'"
     "   WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' ELSE "
     "co.contype::text END,"
     " 'definition', pg_catalog.pg_get_constraintdef(co.oid),"
     " 'not_valid', CASE WHEN NOT co.convalidated THEN 'true' END," COMMENT(
         "co.oid",
         "pg_constraint") ")::text"
                          " FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c ON c.oid = "
                          "co.conrelid"
                          " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE co.conparentid = 0 AND co.contype <> 'n' AND (co.conislocal OR "
                          "NOT c.relispartition) AND n.nspname = ANY($1)"
                          " AND n.nspname || '.' || c.relname <> ALL($2) ORDER BY 1, 2, 3"},
    // Indexes not backing a constraint (those are the constraint's), with validity.
    {"index",
     "SELECT n.nspname, t.relname, ic.relname, json_build_object("
     " 'sql_name', format('%I.%I', n.nspname, ic.relname), 'sql_table', format('%I.%I', n.nspname, "
     "t.relname),"
     " 'definition', pg_catalog.pg_get_indexdef(i.indexrelid),"
     " 'valid', CASE WHEN i.indisvalid THEN 'true' ELSE 'false' END,"
     " 'clustered', CASE WHEN i.indisclustered THEN 'true' END," COMMENT(
         "ic.oid", "pg_class") ")::text"
                               " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid "
                               "= i.indexrelid"
                               " JOIN pg_catalog.pg_class t ON t.oid = i.indrelid JOIN "
                               "pg_catalog.pg_namespace n ON n.oid = "
                               "t.relnamespace"
                               " WHERE t.relkind IN ('r', 'p', 'm') AND NOT ic.relispartition AND "
                               "n.nspname = ANY($1) AND "
                               "n.nspname || '.' || "
                               "t.relname <> ALL($2)"
                               " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co WHERE "
                               "co.conindid = i.indexrelid"
                               "   AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))"
                               " AND" NOT_FROM_EXTENSION("pg_class", "t.oid") "ORDER BY 1, 2, 3"},
    // Views and materialized views, with the relations they read (to rebuild them in fixes).
    {"view",
     "SELECT n.nspname, '', c.relname, json_build_object("
     " 'sql_name', format('%I.%I', n.nspname, c.relname),"
     " 'materialized', CASE WHEN c.relkind = 'm' THEN 'true' END,"
     " 'definition', pg_catalog.pg_get_viewdef(c.oid, true),"
     " 'depends_on', (SELECT string_agg(DISTINCT rn.nspname || '.' || rc.relname, ',')"
     "   FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d ON d.classid = "
     "'pg_rewrite'::regclass"
     "   AND d.objid = r.oid JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid"
     "   JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace"
     "   WHERE r.ev_class = c.oid AND d.refobjid <> c.oid AND d.refclassid = "
     "'pg_class'::regclass),"
     " 'options', pg_catalog.array_to_string(c.reloptions, ', ')," OWNER("c.relowner") "," COMMENT(
         "c.oid",
         "pg_class") ", 'acl', " ACL_TEXT("c.relacl", "c.relowner",
                                          "r") ")::text"
                                               " FROM pg_catalog.pg_class c JOIN "
                                               "pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                                               " WHERE c.relkind IN ('v', 'm') AND n.nspname = "
                                               "ANY($1) AND n.nspname || '.' || c.relname <> "
                                               "ALL($2)"
                                               " AND" NOT_FROM_EXTENSION("pg_class",
                                                                         "c.oid") "ORDER BY 1, 3"},
    // Sequences, except those behind identity columns (the column says it) and stepwise's own.
    {"sequence",
     "SELECT n.nspname, '', c.relname, json_build_object("
     " 'sql_name', format('%I.%I', n.nspname, c.relname), 'type', "
     "pg_catalog.format_type(s.seqtypid, NULL),"
     " 'start', s.seqstart::text, 'increment', s.seqincrement::text, 'min', s.seqmin::text,"
     " 'max', s.seqmax::text, 'cache', s.seqcache::text, 'cycle', CASE WHEN s.seqcycle THEN 'true' "
     "END,"
     " 'owned_by', (SELECT tn.nspname || '.' || t.relname || '.' || a.attname FROM "
     "pg_catalog.pg_depend d"
     "   JOIN pg_catalog.pg_class t ON t.oid = d.refobjid JOIN pg_catalog.pg_namespace tn ON "
     "tn.oid = t.relnamespace"
     "   JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid"
     "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a')," OWNER(
         "c.relowner") "," COMMENT("c.oid",
                                   "pg_class") ", 'acl', " ACL_TEXT("c.relacl", "c.relowner",
                                                                    "s") ")::text"
                                                                         " FROM "
                                                                         "pg_catalog.pg_sequence s "
                                                                         "JOIN pg_catalog.pg_class "
                                                                         "c ON c.oid = s.seqrelid"
                                                                         " JOIN "
                                                                         "pg_catalog.pg_namespace "
                                                                         "n ON n.oid = "
                                                                         "c.relnamespace"
                                                                         " WHERE n.nspname = "
                                                                         "ANY($1) AND NOT EXISTS "
                                                                         "(SELECT 1 FROM "
                                                                         "pg_catalog.pg_depend d"
                                                                         "   JOIN "
                                                                         "pg_catalog.pg_class t ON "
                                                                         "t.oid = d.refobjid JOIN "
                                                                         "pg_catalog.pg_namespace "
                                                                         "tn ON "
                                                                         "tn.oid = t.relnamespace"
                                                                         "   WHERE d.classid = "
                                                                         "'pg_class'::regclass AND "
                                                                         "d.objid = c.oid"
                                                                         "   AND (d.deptype = 'i' "
                                                                         "OR tn.nspname || '.' || "
                                                                         "t.relname = ANY($2)))"
                                                                         " AND" NOT_FROM_EXTENSION(
                                                                             "pg_class",
                                                                             "c.oid") "ORDER BY 1, "
                                                                                      "3"},
    // Functions and procedures: signature and full definition (aggregates: signature only).
    {"function",
     "SELECT n.nspname, '', p.proname || '(' || "
     "pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',"
     " json_build_object("
     " 'sql_name', format('%I.%I(%s)', n.nspname, p.proname, "
     "pg_catalog.pg_get_function_identity_arguments(p.oid)),"
     " 'kind', CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN "
     "'aggregate'"
     "   ELSE 'window' END,"
     " 'definition', CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) "
     "END," OWNER("p.proowner") "," COMMENT("p.oid", "pg_proc") ", 'acl', " ACL_TEXT(
         "p.proacl", "p.proowner",
         "f") ")::text"
              " FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
              " WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL AND" NOT_FROM_EXTENSION(
                  "pg_proc", "p.oid") "ORDER BY 1, 3"},
    // Triggers (not the internal ones behind foreign keys; not a partition's inherited clone).
    {"trigger",
     "SELECT n.nspname, c.relname, tg.tgname, json_build_object("
     " 'sql_name', quote_ident(tg.tgname), 'sql_table', format('%I.%I', n.nspname, c.relname),"
     " 'definition', pg_catalog.pg_get_triggerdef(tg.oid),"
     " 'enabled', CASE tg.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' WHEN 'A' THEN "
     "'always' END," COMMENT(
         "tg.oid",
         "pg_trigger") ")::text"
                       " FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = "
                       "tg.tgrelid"
                       " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                       " WHERE NOT tg.tgisinternal AND tg.tgparentid = 0 AND n.nspname = ANY($1)"
                       " AND n.nspname || '.' || c.relname <> ALL($2) ORDER BY 1, 2, 3"},
    // Types: enums (labels in order), domains, composite types.
    {"type",
     "SELECT n.nspname, '', t.typname, json_build_object("
     " 'sql_name', format('%I.%I', n.nspname, t.typname), 'sql_schema', quote_ident(n.nspname),"
     " 'type', CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' ELSE 'composite' END,"
     " 'labels', (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)"
     "   FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid),"
     " 'base_type', CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, "
     "t.typtypmod) END,"
     " 'not_null', CASE WHEN t.typnotnull THEN 'true' END, 'default', t.typdefault,"
     " 'constraints', (SELECT string_agg(format('CONSTRAINT %I %s', co.conname, "
     "pg_catalog.pg_get_constraintdef(co.oid)),"
     "   ' ' ORDER BY co.conname) FROM pg_catalog.pg_constraint co WHERE co.contypid = t.oid),"
     " 'attributes', (SELECT string_agg(format('%I %s', a.attname, "
     "pg_catalog.format_type(a.atttypid, a.atttypmod)),"
     "   ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a WHERE t.typtype = 'c' AND "
     "a.attrelid = t.typrelid"
     "   AND a.attnum > 0 AND NOT a.attisdropped)," OWNER("t.typowner") "," COMMENT(
         "t.oid",
         "pg_type") ", 'acl', " ACL_TEXT("t.typacl", "t.typowner",
                                         "T") ")::text"
                                              " FROM pg_catalog.pg_type t JOIN "
                                              "pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
                                              " WHERE n.nspname = ANY($1) AND $2::text[] IS NOT "
                                              "NULL AND (t.typtype IN ('e', 'd') OR "
                                              "(t.typtype = 'c'"
                                              "   AND (SELECT c.relkind FROM pg_catalog.pg_class c "
                                              "WHERE c.oid = t.typrelid) = 'c'))"
                                              " AND" NOT_FROM_EXTENSION("pg_type",
                                                                        "t.oid") "ORDER BY 1, 3"},
    // Row-level security policies.
    {"policy",
     "SELECT n.nspname, c.relname, p.polname, json_build_object("
     " 'sql_name', quote_ident(p.polname), 'sql_table', format('%I.%I', n.nspname, c.relname),"
     " 'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN "
     "'UPDATE'"
     "   WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,"
     " 'permissive', CASE WHEN p.polpermissive THEN 'true' ELSE 'false' END,"
     " 'roles', (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE "
     "quote_ident(pg_catalog.pg_get_userbyid(r)) END,"
     "   ', ' ORDER BY 1) FROM unnest(p.polroles) r),"
     " 'using', pg_catalog.pg_get_expr(p.polqual, p.polrelid),"
     " 'with_check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)," COMMENT(
         "p.oid", "pg_policy") ")::text"
                               " FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = "
                               "p.polrelid"
                               " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                               " WHERE n.nspname = ANY($1) AND n.nspname || '.' || c.relname <> "
                               "ALL($2) ORDER BY 1, 2, 3"},
    // Collations (CREATE COLLATION); the provider's columns read through to_jsonb, as they
    // differ between server versions (colliculocale, colllocale).
    {"collation",
     "SELECT n.nspname, '', co.collname, json_build_object("
     " 'sql_name', format('%I.%I', n.nspname, co.collname),"
     " 'provider', CASE co.collprovider WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc' ELSE "
     "co.collprovider::text END,"
     " 'lc_collate', pg_catalog.to_jsonb(co) ->> 'collcollate', 'lc_ctype', "
     "pg_catalog.to_jsonb(co) "
     "->> 'collctype',"
     " 'locale', COALESCE(pg_catalog.to_jsonb(co) ->> 'colllocale', pg_catalog.to_jsonb(co) ->> "
     "'colliculocale'),"
     " 'icu_rules', pg_catalog.to_jsonb(co) ->> 'collicurules',"
     " 'deterministic', CASE WHEN NOT co.collisdeterministic THEN 'false' END," OWNER(
         "co.collowner") "," COMMENT("co.oid",
                                     "pg_collation") ")::text"
                                                     " FROM pg_catalog.pg_collation co JOIN "
                                                     "pg_catalog.pg_namespace n ON n.oid = "
                                                     "co.collnamespace"
                                                     " WHERE n.nspname = ANY($1) AND $2::text[] IS "
                                                     "NOT NULL AND" NOT_FROM_EXTENSION(
                                                         "pg_collation", "co.oid") "ORDER BY 1, 3"},
    // Rules (not the _RETURN rule of a view, which is the view).
    {"rule",
     "SELECT n.nspname, c.relname, r.rulename, json_build_object("
     " 'sql_name', pg_catalog.quote_ident(r.rulename), 'sql_table', format('%I.%I', n.nspname, "
     "c.relname),"
     " 'definition', pg_catalog.pg_get_ruledef(r.oid),"
     " 'enabled', CASE r.ev_enabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' WHEN 'A' THEN "
     "'always' END," COMMENT(
         "r.oid", "pg_rewrite") ")::text"
                                " FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid "
                                "= r.ev_class"
                                " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                                " WHERE r.rulename <> '_RETURN' AND n.nspname = ANY($1) AND "
                                "n.nspname || '.' || c.relname <> "
                                "ALL($2)"
                                " AND" NOT_FROM_EXTENSION("pg_class", "c.oid") "ORDER BY 1, 2, 3"},
    // Extended statistics objects (CREATE STATISTICS), under the table they describe.
    {"statistics",
     "SELECT n.nspname, c.relname, st.stxname, json_build_object("
     " 'sql_name', format('%I.%I', n.nspname, st.stxname),"
     " 'definition', pg_catalog.pg_get_statisticsobjdef(st.oid),"
     " 'statistics', CASE WHEN st.stxstattarget >= 0 THEN st.stxstattarget::text END," OWNER(
         "st.stxowner") "," COMMENT("st.oid",
                                    "pg_statistic_ext") ")::text"
                                                        " FROM pg_catalog.pg_statistic_ext st JOIN "
                                                        "pg_catalog.pg_namespace n ON n.oid = "
                                                        "st.stxnamespace"
                                                        " JOIN pg_catalog.pg_class c ON c.oid = "
                                                        "st.stxrelid"
                                                        " WHERE n.nspname = ANY($1) AND n.nspname "
                                                        "|| '.' || c.relname <> ALL($2)"
                                                        " AND" NOT_FROM_EXTENSION(
                                                            "pg_statistic_ext",
                                                            "st.oid") "ORDER BY 1, 2, 3"},
    // Event triggers (of the database: listed when their function is in a described schema).
    {"event_trigger",
     "SELECT '', '', e.evtname, json_build_object("
     " 'sql_name', pg_catalog.quote_ident(e.evtname), 'event', e.evtevent,"
     " 'tags', (SELECT string_agg(pg_catalog.quote_literal(t), ', ' ORDER BY t) FROM "
     "unnest(e.evttags) t),"
     " 'function', format('%I.%I()', n.nspname, p.proname),"
     " 'enabled', CASE e.evtenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' WHEN 'A' THEN "
     "'always' END," OWNER("e.evtowner") "," COMMENT(
         "e.oid", "pg_event_trigger") ")::text"
                                      " FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc "
                                      "p ON p.oid = e.evtfoid"
                                      " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
                                      " WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL "
                                      "AND" NOT_FROM_EXTENSION("pg_event_trigger",
                                                               "e.oid") "ORDER BY 3"},
    // Publications (of the database: listed when they publish all tables or a table or schema
    // that is described).
    {"publication",
     "SELECT '', '', p.pubname, json_build_object("
     " 'sql_name', pg_catalog.quote_ident(p.pubname),"
     " 'all_tables', CASE WHEN p.puballtables THEN 'true' END,"
     " 'publish', concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate "
     "THEN 'update' END,"
     "   CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END),"
     " 'via_root', CASE WHEN p.pubviaroot THEN 'true' END,"
     " 'tables', (SELECT string_agg(format('%I.%I', tn.nspname, tc.relname), ', ' ORDER BY "
     "tn.nspname, tc.relname)"
     "   FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_class tc ON tc.oid = pr.prrelid"
     "   JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace WHERE pr.prpubid = "
     "p.oid)," OWNER("p.pubowner") "," COMMENT(
         "p.oid", "pg_publication") ")::text"
                                    " FROM pg_catalog.pg_publication p WHERE $2::text[] IS NOT "
                                    "NULL AND (p.puballtables OR "
                                    "EXISTS (SELECT 1"
                                    "   FROM pg_catalog.pg_publication_rel pr JOIN "
                                    "pg_catalog.pg_class tc ON tc.oid = pr.prrelid"
                                    "   JOIN pg_catalog.pg_namespace tn ON tn.oid = "
                                    "tc.relnamespace WHERE pr.prpubid = p.oid AND "
                                    "tn.nspname = ANY($1)))"
                                    " ORDER BY 3"},
    // Default privileges (ALTER DEFAULT PRIVILEGES), per role, schema ('' for all) and kind.
    {"default_acl",
     "SELECT COALESCE(n.nspname, ''), '', pg_catalog.pg_get_userbyid(d.defaclrole) || ' on ' ||"
     " CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN "
     "'functions'"
     "   WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' ELSE d.defaclobjtype::text END,"
     " json_build_object('sql_role', "
     "pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(d.defaclrole)),"
     " 'sql_schema', pg_catalog.quote_ident(n.nspname),"
     " 'objects', CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' "
     "THEN "
     "'FUNCTIONS'"
     "   WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' END,"
     " 'acl', " ACL_LIST("d.defaclacl",
                         "d.defaclrole") ")::text"
                                         " FROM pg_catalog.pg_default_acl d LEFT JOIN "
                                         "pg_catalog.pg_namespace n ON n.oid = "
                                         "d.defaclnamespace"
                                         " WHERE (n.nspname IS NULL OR n.nspname = ANY($1)) AND "
                                         "$2::text[] IS NOT NULL ORDER BY 1, 3"},
};

#undef NOT_FROM_EXTENSION
#undef ACL_LIST
#undef ACL_TEXT
#undef OWNER
#undef COMMENT
#undef DESCRIPTION

// A text[] literal: {"a","b"} with " and \ escaped.
std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// The attributes of a row: the text json_build_object(...)::text printed, an object of
// strings and nulls ({"k" : "v", "n" : null}). Read here without a JSON library (it is most of
// the client's work on a large schema); false for anything else (numbers, \u escapes ...),
// which the caller then reads with nlohmann.
bool read_flat_object(std::string_view t, AttrMap& attrs) {
  std::size_t p = 0;
  const auto ws = [&] {
    while (p < t.size() && (t[p] == ' ' || t[p] == '\n' || t[p] == '\t' || t[p] == '\r')) ++p;
  };
  const auto str = [&](std::string& out) {  // at the opening quote
    ++p;
    for (;;) {
      const auto q = t.find_first_of("\"\\", p);
      if (q == std::string_view::npos) return false;
      out.append(t.data() + p, q - p);
      p = q + 1;
      if (t[q] == '"') return true;
      if (p >= t.size()) return false;
      switch (t[p++]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        default:
          return false;  // \uXXXX
      }
    }
  };
  ws();
  if (p >= t.size() || t[p] != '{') return false;
  ++p;
  ws();
  if (p < t.size() && t[p] == '}') {
    ++p;
  } else {
    for (;;) {
      ws();
      if (p >= t.size() || t[p] != '"') return false;
      const auto k0 = p + 1;
      const auto k1 = t.find('"', k0);
      if (k1 == std::string_view::npos ||
          t.substr(k0, k1 - k0).find('\\') != std::string_view::npos)
        return false;
      const auto key = t.substr(k0, k1 - k0);
      p = k1 + 1;
      ws();
      if (p >= t.size() || t[p] != ':') return false;
      ++p;
      ws();
      if (p < t.size() && t[p] == '"') {
        std::string value;
        if (!str(value)) return false;
        attrs.append_unsorted(key, std::move(value));
      } else if (t.substr(p, 4) == "null") {
        p += 4;
      } else {
        return false;
      }
      ws();
      if (p < t.size() && t[p] == ',') {
        ++p;
        continue;
      }
      if (p < t.size() && t[p] == '}') {
        ++p;
        break;
      }
      return false;
    }
  }
  ws();
  return p == t.size();
}

// One object from a catalog row (schema, table, name, attributes as JSON).
SchemaObject object_from_row(const char* kind, Connection::RowFields r,
                             const std::string& reference_role) {
  const auto field = [&](std::size_t i) {
    return i < r.size() && r[i] ? std::string(*r[i]) : std::string();
  };
  SchemaObject o;
  o.kind = kind;
  o.schema = field(0);
  o.table = field(1);
  o.name = field(2);
  const std::string_view json = r.size() > 3 && r[3] ? *r[3] : std::string_view("{}");
  if (!read_flat_object(json, o.attrs)) {
    o.attrs.clear();
    for (const auto& [k, v] : nlohmann::json::parse(json).items())
      if (!v.is_null()) o.attrs.append_unsorted(k, v.is_string() ? v.get<std::string>() : v.dump());
  }
  o.attrs.finish();
  const auto owner = o.attrs.find("owner");
  if (owner != o.attrs.end() && owner->second == reference_role) {
    o.attrs.erase(owner);
    o.attrs.erase("sql_owner");
  }
  if (o.kind == "default_acl" && !reference_role.empty() &&
      o.name.starts_with(reference_role + " on ")) {
    o.name = "(migrator)" + o.name.substr(reference_role.size());
    o.attrs.erase("sql_role");
  }
  return o;
}

SchemaDescription describe_in_transaction(Connection& conn, const DescribeOptions& options);

}  // namespace

SchemaDescription read_catalogs(Connection& conn, const DescribeOptions& options) {
  if (options.in_caller_transaction) return describe_in_transaction(conn, options);
  return in_read_only_snapshot(conn, [&] { return describe_in_transaction(conn, options); });
}

namespace {
// Past this many relations the catalog queries are shared with a second session reading the
// same snapshot (as pg_dump -j does): each query's cost is the server deparsing definitions,
// which one session does on one core. Below it, opening a session costs more than it saves.
// STEPWISE_DESCRIBE_PARALLEL_FROM overrides it (tests, and sites that know their server).
long parallel_from_relations() {
  const char* v = std::getenv("STEPWISE_DESCRIBE_PARALLEL_FROM");
  if (v == nullptr || *v == '\0') return 2000;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != nullptr && *end == '\0' && n >= 0 ? n : 2000;
}

// The order sessions take queries in: the costliest first, so that two sessions finish
// together (columns, indexes, sequences and tables are most of a large schema's time).
std::vector<std::size_t> query_order() {
  std::vector<std::size_t> order;
  for (const char* first : {"column", "index", "sequence", "table", "constraint"})
    for (std::size_t i = 0; i < std::size(kQueries); ++i)
      if (std::string_view(kQueries[i].kind) == first) order.push_back(i);
  for (std::size_t i = 0; i < std::size(kQueries); ++i)
    if (std::find(order.begin(), order.end(), i) == order.end()) order.push_back(i);
  return order;
}

// A second session in the caller's snapshot, or nothing (it could not be opened): the
// caller's session then reads everything. Called only where pg_export_snapshot exists (checked
// with the relation count); PostgreSQL exports from any top-level transaction, standbys too.
std::unique_ptr<Connection> open_in_same_snapshot(Connection& conn,
                                                  const DescribeOptions& options) {
  const auto snapshot =
      conn.query("SELECT pg_catalog.pg_export_snapshot()", {}).at(0).at(0).value_or("");
  try {
    auto helper = options.open_helper();
    helper->execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    helper->execute(fmt::format("SET TRANSACTION SNAPSHOT {}; {}", helper->quote_literal(snapshot),
                                kPinnedCatalogSettings));
    return helper;
  } catch (const Error& e) {
    spdlog::debug("catalog read in one session: a second session was refused ({})", e.what());
    return nullptr;
  }
}

SchemaDescription describe_in_transaction(Connection& conn, const DescribeOptions& options) {
  std::vector<std::string> schemas = options.schemas;
  if (schemas.empty()) {
    // Every schema but the system ones (and other sessions' temporary schemas).
    for (const auto& r : conn.query(
             "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname NOT IN ('pg_catalog', "
             "'information_schema')"
             " AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%' ORDER BY 1",
             {}))
      schemas.push_back(r[0].value_or(""));
  }
  std::vector<std::string> excluded;
  for (const auto& t : options.exclude) excluded.push_back(t.schema + "." + t.table);
  const Params params{array_literal(schemas), array_literal(excluded)};

  SchemaDescription d;
  long relations = 0;
  bool can_export = false;
  // The reference role: the owner of stepwise's log table (the role that migrates), else the
  // database's owner. Objects it owns carry no owner attribute, so that a description generated
  // on a scratch database compares with production whatever the migrating role is called.
  try {
    const std::string log_schema = options.exclude.empty() ? "" : options.exclude.front().schema;
    const std::string log_table = options.exclude.empty() ? "" : options.exclude.front().table;
    const auto rows = conn.query(
        "SELECT pg_catalog.pg_get_userbyid(COALESCE((SELECT c.relowner FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND"
        " c.relname = $2), (SELECT d.datdba FROM pg_catalog.pg_database d WHERE d.datname ="
        " pg_catalog.current_database()))),"
        " (SELECT count(*) FROM pg_catalog.pg_class),"
        " pg_catalog.to_regprocedure('pg_catalog.pg_export_snapshot()') IS NOT NULL",
        {log_schema, log_table});
    if (!rows.empty()) {
      d.reference_role = rows[0][0].value_or("");
      relations = std::stol(rows[0][1].value_or("0"));
      can_export = rows[0][2].value_or("f") == "t";
    }
  } catch (const DbError&) {
    if (!options.partial_catalog) throw;
  }

  // Each query's objects, by its place in kQueries, built from the rows as they arrive; a
  // kind the server could not answer stays empty and is named in `failed` (CockroachDB only:
  // anywhere else the error is thrown).
  std::vector<std::deque<SchemaObject>> found(std::size(kQueries));
  std::vector<char> failed(std::size(kQueries), 0);  // not vector<bool>: written by two threads
  const auto order = query_order();
  std::atomic<std::size_t> next{0};
  const auto read_queries = [&](Connection& c) {
    for (std::size_t k; (k = next.fetch_add(1)) < order.size();) {
      const auto i = order[k];
      try {
        c.query_each(kQueries[i].sql, params, [&](Connection::RowFields r) {
          found[i].push_back(object_from_row(kQueries[i].kind, r, d.reference_role));
        });
      } catch (const DbError&) {
        if (!options.partial_catalog) throw;
        found[i].clear();
        failed[i] = 1;
      }
    }
  };
  std::unique_ptr<Connection> helper;
  if (options.open_helper && !options.partial_catalog && can_export &&
      relations >= parallel_from_relations())
    helper = open_in_same_snapshot(conn, options);
  if (helper) {
    spdlog::debug("catalog read by two sessions in one snapshot ({} relations)", relations);
    std::exception_ptr helper_error;
    std::thread second([&] {
      try {
        read_queries(*helper);
        helper->execute("COMMIT");
      } catch (...) {
        helper_error = std::current_exception();
        next = order.size();  // the caller's session stops too: the read fails anyway
      }
    });
    try {
      read_queries(conn);
    } catch (...) {
      next = order.size();
      helper->cancel();
      second.join();
      throw;
    }
    second.join();
    if (helper_error) std::rethrow_exception(helper_error);
  } else {
    read_queries(conn);
  }

  std::size_t total = 0;
  for (const auto& f : found) total += f.size();
  d.objects.reserve(total);
  for (std::size_t i = 0; i < std::size(kQueries); ++i) {
    if (failed[i]) d.unknown_kinds.emplace_back(kQueries[i].kind);
    for (auto& f = found[i]; !f.empty(); f.pop_front()) d.objects.push_back(std::move(f.front()));
  }
  canonicalize(d);
  return d;
}
}  // namespace

}  // namespace stepwise
