#include <fmt/format.h>

#include <spdlog/spdlog.h>

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

// Every query returns (schema, table, name) and then one text column per attribute (NULL: the
// object has no such attribute), and takes $1 = the schemas to describe (text[]) and $2 =
// "schema.relation" names to leave out (text[]). Attributes are plain columns rather than one
// JSON object per row: building and reading JSON was a third of the server's and most of the
// client's work on a large schema.
struct Attr {
  const char* name;
  const char* sql;  // a text expression
};
struct KindQuery {
  const char* kind;
  const char* keys;  // schema, table, name
  std::vector<Attr> attrs;
  const char* from;  // FROM ... WHERE ... ORDER BY ...
};

// Objects that belong to an extension are the extension's business, not the application's.
// NOT IN (not NOT EXISTS): the members of all extensions are read once into a hash table
// instead of one index probe per row (objid is never NULL).
#define NOT_FROM_EXTENSION(classid, oid)                                                       \
  " " oid " NOT IN (SELECT dx.objid FROM pg_catalog.pg_depend dx WHERE dx.classid = '" classid \
  "'::regclass AND dx.deptype = 'e') "

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
#define ACL_TEXT(acl, owner, typ)                                                  \
  "CASE WHEN " acl " IS NOT NULL THEN NULLIF(" ACL_LIST(acl, owner) ", " ACL_LIST( \
      "pg_catalog.acldefault('" typ "', " owner ")", owner) ") END"
#define ACL(acl, owner, typ) \
  { "acl", ACL_TEXT(acl, owner, typ) }
// Owner (its name; dropped afterwards when it is the reference role) and its quoted name.
#define OWNER(owner)                                                             \
  {"owner", "pg_catalog.pg_get_userbyid(" owner ")"}, {                          \
    "sql_owner", "pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(" owner "))" \
  }
// A comment (the fix quotes it), read from pg_description by its index: obj_description and
// col_description are SQL functions, run by the function executor for every row (a tenth of
// the column query's time at 10,000 tables).
#define DESCRIPTION(oid, catalog, subid)                                            \
  "(SELECT ds.description FROM pg_catalog.pg_description ds WHERE ds.objoid = " oid \
  " AND ds.classoid = 'pg_catalog." catalog "'::pg_catalog.regclass AND ds.objsubid = " subid ")"
#define COMMENT(oid, catalog) \
  { "comment", DESCRIPTION(oid, catalog, "0") }

const KindQuery kQueries[] = {
    // Schemas.
    {"schema",
     "n.nspname, '', n.nspname",
     {{"sql_name", "quote_ident(n.nspname)"},
      OWNER("n.nspowner"),
      COMMENT("n.oid", "pg_namespace"),
      ACL("n.nspacl", "n.nspowner", "n")},
     " FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL"
     " AND" NOT_FROM_EXTENSION("pg_namespace", "n.oid") "ORDER BY 1"},
    // Extensions installed into the described schemas.
    {"extension",
     "n.nspname, '', e.extname",
     {{"sql_name", "quote_ident(e.extname)"},
      {"sql_schema", "quote_ident(n.nspname)"},
      {"version", "e.extversion"}},
     " FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
     " WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL ORDER BY 3"},
    // Tables, with partitioning and row-level security flags.
    {"table",
     "n.nspname, '', c.relname",
     {{"sql_name", "format('%I.%I', n.nspname, c.relname)"},
      {"partitioned", "CASE WHEN c.relkind = 'p' THEN 'true' END"},
      {"persistence", "CASE c.relpersistence WHEN 'u' THEN 'unlogged' END"},
      {"partition_key", "CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END"},
      {"partition_of",
       "(SELECT format('%I.%I', pn.nspname, pc.relname) FROM pg_catalog.pg_inherits i"
       "   JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent JOIN pg_catalog.pg_namespace pn"
       "   ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition)"},
      {"partition_bound",
       "CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END"},
      {"row_security", "CASE WHEN c.relrowsecurity THEN 'true' END"},
      {"force_row_security", "CASE WHEN c.relforcerowsecurity THEN 'true' END"},
      {"options", "pg_catalog.array_to_string(c.reloptions, ', ')"},
      {"replica_identity",
       "CASE c.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'"
       "   WHEN 'i' THEN (SELECT 'index ' || pg_catalog.quote_ident(ic.relname) FROM"
       "   pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
       "   WHERE i.indrelid = c.oid AND i.indisreplident) END"},
      {"inherits",
       "CASE WHEN NOT c.relispartition THEN (SELECT string_agg(format('%I.%I', pn.nspname,"
       "   pc.relname), ', ' ORDER BY i.inhseqno) FROM pg_catalog.pg_inherits i"
       "   JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent JOIN pg_catalog.pg_namespace pn"
       "   ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) END"},
      OWNER("c.relowner"),
      COMMENT("c.oid", "pg_class"),
      ACL("c.relacl", "c.relowner", "r")},
     " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND n.nspname || '.' || c.relname"
     " <> ALL($2) AND" NOT_FROM_EXTENSION("pg_class", "c.oid") "ORDER BY 1, 3"},
    // Columns: type with modifiers, default, nullability, identity / generated, collation. The
    // position (among the columns described) is counted by the reader: rows come in order.
    {"column",
     "n.nspname, c.relname, a.attname",
     {{"sql_name", "quote_ident(a.attname)"},
      {"sql_table", "format('%I.%I', n.nspname, c.relname)"},
      {"type", "pg_catalog.format_type(a.atttypid, a.atttypmod)"},
      {"not_null", "CASE WHEN a.attnotnull THEN 'true' END"},
      // A default cannot refer to a column: deparsed without the table (opening it for each
      // default was most of the column query's time).
      {"default", "CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, 0) END"},
      {"generated",
       "CASE WHEN a.attgenerated = 's' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END"},
      {"identity", "CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END"},
      {"collation",
       "CASE WHEN a.attcollation <> t.typcollation THEN (SELECT format('%I.%I', cn.nspname,"
       "   co.collname) FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn"
       "   ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END"},
      {"statistics", "CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::text END"},
      {"storage",
       "CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN'"
       "   WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END"},
      {"compression", "CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"},
      {"identity_options",
       "(SELECT format('SEQUENCE NAME %I.%I START WITH %s INCREMENT BY %s MINVALUE %s"
       " MAXVALUE %s CACHE %s%s', sn.nspname, sc.relname, s.seqstart, s.seqincrement, s.seqmin,"
       "   s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END)"
       "   FROM pg_catalog.pg_depend dp JOIN pg_catalog.pg_class sc ON sc.oid = dp.objid"
       "   JOIN pg_catalog.pg_namespace sn ON sn.oid = sc.relnamespace"
       "   JOIN pg_catalog.pg_sequence s ON s.seqrelid = sc.oid"
       "   WHERE a.attidentity <> '' AND dp.classid = 'pg_class'::regclass"
       "   AND dp.refclassid = 'pg_class'::regclass AND dp.refobjid = c.oid"
       "   AND dp.refobjsubid = a.attnum AND dp.deptype = 'i' AND sc.relkind = 'S')"},
      {"comment", DESCRIPTION("c.oid", "pg_class", "a.attnum")},
      ACL("a.attacl", "c.relowner", "c")},
     " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
     " LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
     " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
     " AND (NOT c.relispartition OR a.attislocal) AND n.nspname = ANY($1)"
     " AND n.nspname || '.' || c.relname <> ALL($2)"
     " AND" NOT_FROM_EXTENSION("pg_class", "c.oid") "ORDER BY 1, 2, a.attnum"},
    // Constraints: primary, foreign (with actions), unique, check, exclusion. Constraints a
    // partition inherits from its parent are the parent's.
    {"constraint",
     "n.nspname, c.relname, co.conname",
     {{"sql_name", "quote_ident(co.conname)"},
      {"sql_table", "format('%I.%I', n.nspname, c.relname)"},
      {"type",
       "CASE co.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key'"
       "   WHEN 'u' THEN 'unique' WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion'"
       "   WHEN 't' THEN 'trigger' ELSE co.contype::text END"},
      {"definition", "pg_catalog.pg_get_constraintdef(co.oid)"},
      {"not_valid", "CASE WHEN NOT co.convalidated THEN 'true' END"},
      COMMENT("co.oid", "pg_constraint")},
     " FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c ON c.oid = co.conrelid"
     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " WHERE co.conparentid = 0 AND co.contype <> 'n' AND (co.conislocal OR NOT"
     " c.relispartition) AND n.nspname = ANY($1) AND n.nspname || '.' || c.relname <> ALL($2)"
     " ORDER BY 1, 2, 3"},
    // Indexes not backing a constraint (those are the constraint's), with validity. The
    // definition: see index_definition() below.
    {"index",
     "n.nspname, t.relname, ic.relname",
     {{"sql_name", "format('%I.%I', n.nspname, ic.relname)"},
      {"sql_table", "format('%I.%I', n.nspname, t.relname)"},
      {"definition", "pg_catalog.pg_get_indexdef(i.indexrelid)"},
      {"valid", "CASE WHEN i.indisvalid THEN 'true' ELSE 'false' END"},
      {"clustered", "CASE WHEN i.indisclustered THEN 'true' END"},
      COMMENT("ic.oid", "pg_class")},
     " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
     " JOIN pg_catalog.pg_class t ON t.oid = i.indrelid"
     " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
     " WHERE t.relkind IN ('r', 'p', 'm') AND NOT ic.relispartition AND n.nspname = ANY($1)"
     " AND n.nspname || '.' || t.relname <> ALL($2)"
     " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co WHERE co.conindid ="
     " i.indexrelid AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))"
     " AND" NOT_FROM_EXTENSION("pg_class", "t.oid") "ORDER BY 1, 2, 3"},
    // Views and materialized views, with the relations they read (to rebuild them in fixes).
    {"view",
     "n.nspname, '', c.relname",
     {{"sql_name", "format('%I.%I', n.nspname, c.relname)"},
      {"materialized", "CASE WHEN c.relkind = 'm' THEN 'true' END"},
      {"definition", "pg_catalog.pg_get_viewdef(c.oid, true)"},
      {"depends_on",
       "(SELECT string_agg(DISTINCT rn.nspname || '.' || rc.relname, ',')"
       "   FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d ON d.classid ="
       "   'pg_rewrite'::regclass AND d.objid = r.oid"
       "   JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid"
       "   JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace"
       "   WHERE r.ev_class = c.oid AND d.refobjid <> c.oid"
       "   AND d.refclassid = 'pg_class'::regclass)"},
      {"options", "pg_catalog.array_to_string(c.reloptions, ', ')"},
      OWNER("c.relowner"),
      COMMENT("c.oid", "pg_class"),
      ACL("c.relacl", "c.relowner", "r")},
     " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($1) AND n.nspname || '.' || c.relname"
     " <> ALL($2) AND" NOT_FROM_EXTENSION("pg_class", "c.oid") "ORDER BY 1, 3"},
    // Sequences, except those behind identity columns (the column says it) and stepwise's own.
    {"sequence",
     "n.nspname, '', c.relname",
     {{"sql_name", "format('%I.%I', n.nspname, c.relname)"},
      {"type", "pg_catalog.format_type(s.seqtypid, NULL)"},
      {"start", "s.seqstart::text"},
      {"increment", "s.seqincrement::text"},
      {"min", "s.seqmin::text"},
      {"max", "s.seqmax::text"},
      {"cache", "s.seqcache::text"},
      {"cycle", "CASE WHEN s.seqcycle THEN 'true' END"},
      {"owned_by",
       "(SELECT tn.nspname || '.' || t.relname || '.' || a.attname FROM pg_catalog.pg_depend d"
       "   JOIN pg_catalog.pg_class t ON t.oid = d.refobjid"
       "   JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace"
       "   JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid"
       "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a')"},
      OWNER("c.relowner"),
      COMMENT("c.oid", "pg_class"),
      ACL("c.relacl", "c.relowner", "s")},
     " FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid"
     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " WHERE n.nspname = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
     "   JOIN pg_catalog.pg_class t ON t.oid = d.refobjid"
     "   JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace"
     "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
     "   AND (d.deptype = 'i' OR tn.nspname || '.' || t.relname = ANY($2)))"
     " AND n.nspname || '.' || c.relname <> ALL($2)"
     " AND" NOT_FROM_EXTENSION("pg_class", "c.oid") "ORDER BY 1, 3"},
    // Functions and procedures: signature and full definition (aggregates: signature only).
    {"function",
     "n.nspname, '', p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid)"
     " || ')'",
     {{"sql_name",
       "format('%I.%I(%s)', n.nspname, p.proname,"
       " pg_catalog.pg_get_function_identity_arguments(p.oid))"},
      {"kind",
       "CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure'"
       "   WHEN 'a' THEN 'aggregate' ELSE 'window' END"},
      {"definition", "CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END"},
      OWNER("p.proowner"),
      COMMENT("p.oid", "pg_proc"),
      ACL("p.proacl", "p.proowner", "f")},
     " FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
     " WHERE n.nspname = ANY($1) AND n.nspname || '.' || p.proname <> ALL($2)"
     " AND" NOT_FROM_EXTENSION("pg_proc", "p.oid") "ORDER BY 1, 3"},
    // Triggers (not the internal ones behind foreign keys; not a partition's inherited clone).
    {"trigger",
     "n.nspname, c.relname, tg.tgname",
     {{"sql_name", "quote_ident(tg.tgname)"},
      {"sql_table", "format('%I.%I', n.nspname, c.relname)"},
      {"definition", "pg_catalog.pg_get_triggerdef(tg.oid)"},
      {"enabled",
       "CASE tg.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'"
       "   WHEN 'A' THEN 'always' END"},
      COMMENT("tg.oid", "pg_trigger")},
     " FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid"
     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " WHERE NOT tg.tgisinternal AND tg.tgparentid = 0 AND n.nspname = ANY($1)"
     " AND n.nspname || '.' || c.relname <> ALL($2) ORDER BY 1, 2, 3"},
    // Types: enums (labels in order), domains, composite types.
    {"type",
     "n.nspname, '', t.typname",
     {{"sql_name", "format('%I.%I', n.nspname, t.typname)"},
      {"sql_schema", "quote_ident(n.nspname)"},
      {"type", "CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' ELSE 'composite' END"},
      {"labels",
       "(SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)"
       "   FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)"},
      {"base_type",
       "CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END"},
      {"not_null", "CASE WHEN t.typnotnull THEN 'true' END"},
      {"default", "t.typdefault"},
      {"constraints",
       "(SELECT string_agg(format('CONSTRAINT %I %s', co.conname,"
       "   pg_catalog.pg_get_constraintdef(co.oid)), ' ' ORDER BY co.conname)"
       "   FROM pg_catalog.pg_constraint co WHERE co.contypid = t.oid)"},
      {"attributes",
       "(SELECT string_agg(format('%I %s', a.attname, pg_catalog.format_type(a.atttypid,"
       "   a.atttypmod)), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a"
       "   WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0"
       "   AND NOT a.attisdropped)"},
      OWNER("t.typowner"),
      COMMENT("t.oid", "pg_type"),
      ACL("t.typacl", "t.typowner", "T")},
     " FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
     " WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL AND (t.typtype IN ('e', 'd') OR"
     " (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c"
     "   WHERE c.oid = t.typrelid) = 'c'))"
     " AND" NOT_FROM_EXTENSION("pg_type", "t.oid") "ORDER BY 1, 3"},
    // Row-level security policies.
    {"policy",
     "n.nspname, c.relname, p.polname",
     {{"sql_name", "quote_ident(p.polname)"},
      {"sql_table", "format('%I.%I', n.nspname, c.relname)"},
      {"command",
       "CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'"
       "   WHEN 'd' THEN 'DELETE' ELSE 'ALL' END"},
      {"permissive", "CASE WHEN p.polpermissive THEN 'true' ELSE 'false' END"},
      {"roles",
       "(SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE"
       "   quote_ident(pg_catalog.pg_get_userbyid(r)) END, ', ' ORDER BY 1)"
       "   FROM unnest(p.polroles) r)"},
      {"using", "pg_catalog.pg_get_expr(p.polqual, p.polrelid)"},
      {"with_check", "pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)"},
      COMMENT("p.oid", "pg_policy")},
     " FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid"
     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " WHERE n.nspname = ANY($1) AND n.nspname || '.' || c.relname <> ALL($2) ORDER BY 1, 2, 3"},
    // Collations (CREATE COLLATION); the provider's columns read through to_jsonb, as they
    // differ between server versions (colliculocale, colllocale).
    {"collation",
     "n.nspname, '', co.collname",
     {{"sql_name", "format('%I.%I', n.nspname, co.collname)"},
      {"provider",
       "CASE co.collprovider WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc'"
       "   ELSE co.collprovider::text END"},
      {"lc_collate", "pg_catalog.to_jsonb(co) ->> 'collcollate'"},
      {"lc_ctype", "pg_catalog.to_jsonb(co) ->> 'collctype'"},
      {"locale",
       "COALESCE(pg_catalog.to_jsonb(co) ->> 'colllocale',"
       "   pg_catalog.to_jsonb(co) ->> 'colliculocale')"},
      {"icu_rules", "pg_catalog.to_jsonb(co) ->> 'collicurules'"},
      {"deterministic", "CASE WHEN NOT co.collisdeterministic THEN 'false' END"},
      OWNER("co.collowner"),
      COMMENT("co.oid", "pg_collation")},
     " FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid ="
     " co.collnamespace WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL"
     " AND" NOT_FROM_EXTENSION("pg_collation", "co.oid") "ORDER BY 1, 3"},
    // Rules (not the _RETURN rule of a view, which is the view).
    {"rule",
     "n.nspname, c.relname, r.rulename",
     {{"sql_name", "pg_catalog.quote_ident(r.rulename)"},
      {"sql_table", "format('%I.%I', n.nspname, c.relname)"},
      {"definition", "pg_catalog.pg_get_ruledef(r.oid)"},
      {"enabled",
       "CASE r.ev_enabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'"
       "   WHEN 'A' THEN 'always' END"},
      COMMENT("r.oid", "pg_rewrite")},
     " FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class"
     " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
     " WHERE r.rulename <> '_RETURN' AND n.nspname = ANY($1)"
     " AND n.nspname || '.' || c.relname <> ALL($2)"
     " AND" NOT_FROM_EXTENSION("pg_class", "c.oid") "ORDER BY 1, 2, 3"},
    // Extended statistics objects (CREATE STATISTICS), under the table they describe.
    {"statistics",
     "n.nspname, c.relname, st.stxname",
     {{"sql_name", "format('%I.%I', n.nspname, st.stxname)"},
      {"definition", "pg_catalog.pg_get_statisticsobjdef(st.oid)"},
      {"statistics", "CASE WHEN st.stxstattarget >= 0 THEN st.stxstattarget::text END"},
      OWNER("st.stxowner"),
      COMMENT("st.oid", "pg_statistic_ext")},
     " FROM pg_catalog.pg_statistic_ext st JOIN pg_catalog.pg_namespace n ON n.oid ="
     " st.stxnamespace JOIN pg_catalog.pg_class c ON c.oid = st.stxrelid"
     " WHERE n.nspname = ANY($1) AND n.nspname || '.' || c.relname <> ALL($2)"
     " AND" NOT_FROM_EXTENSION("pg_statistic_ext", "st.oid") "ORDER BY 1, 2, 3"},
    // Event triggers (of the database: listed when their function is in a described schema).
    {"event_trigger",
     "'', '', e.evtname",
     {{"sql_name", "pg_catalog.quote_ident(e.evtname)"},
      {"event", "e.evtevent"},
      {"tags",
       "(SELECT string_agg(pg_catalog.quote_literal(t), ', ' ORDER BY t)"
       "   FROM unnest(e.evttags) t)"},
      {"function", "format('%I.%I()', n.nspname, p.proname)"},
      {"enabled",
       "CASE e.evtenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'"
       "   WHEN 'A' THEN 'always' END"},
      OWNER("e.evtowner"),
      COMMENT("e.oid", "pg_event_trigger")},
     " FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid"
     " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
     " WHERE n.nspname = ANY($1) AND $2::text[] IS NOT NULL"
     " AND" NOT_FROM_EXTENSION("pg_event_trigger", "e.oid") "ORDER BY 3"},
    // Publications (of the database: listed when they publish all tables or a table or schema
    // that is described).
    {"publication",
     "'', '', p.pubname",
     {{"sql_name", "pg_catalog.quote_ident(p.pubname)"},
      {"all_tables", "CASE WHEN p.puballtables THEN 'true' END"},
      {"publish",
       "concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate"
       "   THEN 'update' END, CASE WHEN p.pubdelete THEN 'delete' END,"
       "   CASE WHEN p.pubtruncate THEN 'truncate' END)"},
      {"via_root", "CASE WHEN p.pubviaroot THEN 'true' END"},
      {"tables",
       "(SELECT string_agg(format('%I.%I', tn.nspname, tc.relname), ', ' ORDER BY"
       "   tn.nspname, tc.relname) FROM pg_catalog.pg_publication_rel pr"
       "   JOIN pg_catalog.pg_class tc ON tc.oid = pr.prrelid"
       "   JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace"
       "   WHERE pr.prpubid = p.oid)"},
      OWNER("p.pubowner"),
      COMMENT("p.oid", "pg_publication")},
     " FROM pg_catalog.pg_publication p WHERE $2::text[] IS NOT NULL AND (p.puballtables OR"
     " EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr"
     "   JOIN pg_catalog.pg_class tc ON tc.oid = pr.prrelid"
     "   JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace"
     "   WHERE pr.prpubid = p.oid AND tn.nspname = ANY($1))) ORDER BY 3"},
    // Default privileges (ALTER DEFAULT PRIVILEGES), per role, schema ('' for all) and kind.
    {"default_acl",
     "COALESCE(n.nspname, ''), '', pg_catalog.pg_get_userbyid(d.defaclrole) || ' on ' ||"
     " CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'"
     "   WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas'"
     "   ELSE d.defaclobjtype::text END",
     {{"sql_role", "pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(d.defaclrole))"},
      {"sql_schema", "pg_catalog.quote_ident(n.nspname)"},
      {"objects",
       "CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'"
       "   WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' END"},
      {"acl", ACL_LIST("d.defaclacl", "d.defaclrole")}},
     " FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n"
     " ON n.oid = d.defaclnamespace"
     " WHERE (n.nspname IS NULL OR n.nspname = ANY($1)) AND $2::text[] IS NOT NULL"
     " ORDER BY 1, 3"},
};

#undef NOT_FROM_EXTENSION
#undef ACL_LIST
#undef ACL_TEXT
#undef ACL
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

// What reads the catalogs: PostgreSQL's own (not a partial catalog such as CockroachDB's),
// and its version (server_version_num).
struct Server {
  bool postgres = false;
  long version = 0;
};

// An index's definition. pg_get_indexdef costs the server some 70 us an index (for every key
// column it looks for the type's default operator class by scanning pg_opclass): on
// PostgreSQL the indexes whose text is certain are spelled from pg_index here exactly as
// pg_get_indexdef spells them (ruleutils.c, pg_get_indexdef_worker): a plain index (not a
// partitioned one) on columns only (no expression, no predicate, no INCLUDE, no storage
// parameter, not NULLS NOT DISTINCT), each key column ascending with the default nulls order,
// in its own collation, without operator class options, with the default operator class of
// its own type (not a domain's, not a binary-compatible type's). The server spells the others.
std::string index_definition(const Server& s) {
  const std::string server = "pg_catalog.pg_get_indexdef(i.indexrelid)";
  if (!s.postgres) return server;
  // Each key column's quoted name, or NULL when the server would print more than the name.
  // The default operator classes are read once into a hash table (COALESCE keeps the IN a
  // subplan: pulled up into a join, it was planned as a merge join for every key).
  const std::string key_column =
      "(SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.pg_attribute a"
      " WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[k.k] AND i.indoption[k.k] = 0"
      " AND i.indcollation[k.k] IN (0, a.attcollation)"
      " AND COALESCE((i.indclass[k.k], a.atttypid) IN (SELECT oc.oid, oc.opcintype"
      " FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_type ty ON ty.oid = oc.opcintype"
      " WHERE oc.opcdefault AND ty.typtype <> 'd'), false)"
      " AND (SELECT ia.attoptions FROM pg_catalog.pg_attribute ia WHERE ia.attrelid ="
      " i.indexrelid AND ia.attnum = k.k + 1) IS NULL)";
  return "COALESCE(CASE WHEN ic.relkind = 'i' AND i.indexprs IS NULL AND i.indpred IS NULL"
         " AND ic.reloptions IS NULL AND i.indnatts = i.indnkeyatts" +
         std::string(s.version >= 150000 ? " AND NOT i.indnullsnotdistinct" : "") +
         " THEN 'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' ||"
         " pg_catalog.quote_ident(ic.relname) || ' ON ' || pg_catalog.quote_ident(n.nspname) ||"
         " '.' || pg_catalog.quote_ident(t.relname) || ' USING ' || (SELECT"
         " pg_catalog.quote_ident(am.amname) FROM pg_catalog.pg_am am WHERE am.oid = ic.relam)"
         " || ' (' || (SELECT pg_catalog.string_agg(c.name, ', ' ORDER BY c.k) FROM (SELECT k.k, " +
         key_column +
         " AS name FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) k(k) OFFSET 0) c"
         " HAVING pg_catalog.count(c.name) = i.indnkeyatts) || ')' END, " +
         server + ")";
}

// The SQL of a kind's query on this server.
std::string query_sql(const KindQuery& q, const Server& s) {
  std::string sql = "SELECT ";
  sql += q.keys;
  for (const auto& a : q.attrs) {
    sql += ", ";
    const bool index_def =
        std::string_view(q.kind) == "index" && std::string_view(a.name) == "definition";
    sql += index_def ? index_definition(s) : std::string(a.sql);
    sql += " AS \"";
    sql += a.name;
    sql += '"';
  }
  return sql + q.from;
}

// Objects from the rows of one kind's query (schema, table, name, then its attributes in
// order), as they arrive.
class RowReader {
 public:
  RowReader(const KindQuery& q, const std::string& reference_role)
      : q_(q), role_(reference_role), column_(std::string_view(q.kind) == "column") {
    keys_.reserve(q.attrs.size());
    for (const auto& a : q.attrs) keys_.push_back(intern_attr_key(a.name));
  }

  SchemaObject read(Connection::RowFields r) {
    const auto field = [&](std::size_t i) {
      return i < r.size() && r[i] ? std::string(*r[i]) : std::string();
    };
    SchemaObject o;
    o.kind = q_.kind;
    o.schema = field(0);
    o.table = field(1);
    o.name = field(2);
    std::size_t n = column_ ? 1 : 0;
    for (std::size_t i = 3; i < r.size(); ++i) n += r[i] ? 1 : 0;
    o.attrs.reserve(n);
    for (std::size_t i = 0; i < keys_.size() && i + 3 < r.size(); ++i)
      if (const auto& v = r[i + 3]) o.attrs.append_unsorted(keys_[i], std::string(*v));
    if (column_) {
      // Its place among the table's columns (the rows come by table, then attnum).
      if (o.schema != last_schema_ || o.table != last_table_) {
        last_schema_ = o.schema;
        last_table_ = o.table;
        position_ = 0;
      }
      o.attrs.append_unsorted(keys_position(), std::to_string(++position_));
    }
    o.attrs.finish();
    const auto owner = o.attrs.find("owner");
    if (owner != o.attrs.end() && owner->second == role_) {
      o.attrs.erase(owner);
      o.attrs.erase("sql_owner");
    }
    if (o.kind == "default_acl" && !role_.empty() && o.name.starts_with(role_ + " on ")) {
      o.name = "(migrator)" + o.name.substr(role_.size());
      o.attrs.erase("sql_role");
    }
    return o;
  }

 private:
  static const std::string* keys_position() {
    static const std::string* const key = intern_attr_key("position");
    return key;
  }

  const KindQuery& q_;
  const std::string& role_;
  const bool column_;
  std::vector<const std::string*> keys_;
  std::string last_schema_, last_table_;
  std::size_t position_ = 0;
};

SchemaDescription describe_in_transaction(Connection& conn, const DescribeOptions& options);

}  // namespace

SchemaDescription read_catalogs(Connection& conn, const DescribeOptions& options) {
  if (options.in_caller_transaction) return describe_in_transaction(conn, options);
  return in_read_only_snapshot(conn, [&] { return describe_in_transaction(conn, options); });
}

namespace {
// Session settings for reading PostgreSQL's catalogs fast (they change no text).
constexpr const char* kPostgresCatalogTuning = "SET LOCAL jit = off";

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
    helper->execute(fmt::format("SET TRANSACTION SNAPSHOT {}; {}; {}",
                                helper->quote_literal(snapshot), kPinnedCatalogSettings,
                                kPostgresCatalogTuning));
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
  Server server;
  server.postgres = !options.partial_catalog;
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
        " pg_catalog.to_regprocedure('pg_catalog.pg_export_snapshot()') IS NOT NULL" +
            std::string(server.postgres ? ", pg_catalog.current_setting('server_version_num')"
                                        : ""),
        {log_schema, log_table});
    if (!rows.empty()) {
      d.reference_role = rows[0][0].value_or("");
      relations = std::stol(rows[0][1].value_or("0"));
      can_export = rows[0][2].value_or("f") == "t";
      if (server.postgres) server.version = std::stol(rows[0].at(3).value_or("0"));
    }
  } catch (const DbError&) {
    if (!options.partial_catalog) throw;
  }
  // No JIT compilation (as pg_dump): the column query's cost estimate crosses jit_above_cost,
  // and compiling its expressions took longer than running them.
  if (server.postgres) conn.execute(kPostgresCatalogTuning);
  std::vector<std::string> sql;
  sql.reserve(std::size(kQueries));
  for (const auto& q : kQueries) sql.push_back(query_sql(q, server));

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
        RowReader reader(kQueries[i], d.reference_role);
        c.query_each(sql[i], params, [&](Connection::RowFields r) {
          auto o = reader.read(r);
          canonicalize_object(o);
          if (!options.keep || options.keep(o)) found[i].push_back(std::move(o));
        });
        // What was kept before `keep` could judge (validate: the expected description was
        // still being parsed) is judged again now.
        if (options.keep)
          std::erase_if(found[i], [&](const SchemaObject& o) { return !options.keep(o); });
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
