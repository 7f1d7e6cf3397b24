# find_package(stepwise) — the stepwise libraries, the stepwise-embed tool, and
# stepwise_add_migrator(NAME <exe> MIGRATIONS <folder>) to build a migrator with your own
# migrations embedded. Needs the same Debian -dev packages stepwise is built with.
include(CMakeFindDependencyMacro)
find_dependency(fmt)
find_dependency(spdlog)
find_dependency(CLI11)
find_dependency(nlohmann_json)
find_dependency(OpenSSL)
find_dependency(Threads)
find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::PQ)
  pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
endif()
if(NOT TARGET PkgConfig::PQXX)
  pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
endif()
include("${CMAKE_CURRENT_LIST_DIR}/stepwiseTargets.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/embed_migrations.cmake")
