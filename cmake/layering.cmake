# The dependency direction, checked at configure time: core <- engine <- pqxx <- cli. The
# targets' link lines already keep core from linking the engine; this keeps the sources from
# reaching past their layer through the shared include/ folder.
set(_engine_headers "engine|database|lock|lock_policy|connect_retry|history_store|runner|describe|progress|bundle|source")
file(GLOB _core_sources ${CMAKE_CURRENT_SOURCE_DIR}/src/core/*.cpp)
foreach(_f IN LISTS _core_sources)
  file(STRINGS ${_f} _hits REGEX "#include [\"<]stepwise/(${_engine_headers})\\.hpp[\">]")
  if(_hits)
    message(FATAL_ERROR "${_f}: core includes an engine header (${_hits}); core knows no engine and no database")
  endif()
endforeach()
file(GLOB _below_pqxx ${CMAKE_CURRENT_SOURCE_DIR}/src/core/*.cpp ${CMAKE_CURRENT_SOURCE_DIR}/src/engine/*.cpp
     ${CMAKE_CURRENT_SOURCE_DIR}/src/engine/*.hpp ${CMAKE_CURRENT_SOURCE_DIR}/include/stepwise/*.hpp)
foreach(_f IN LISTS _below_pqxx)
  file(STRINGS ${_f} _hits REGEX "#include [\"<](pqxx/|libpq-fe\\.h|\\.\\./pqxx/|\\.\\./cli/)")
  if(_hits)
    message(FATAL_ERROR "${_f}: includes the database adapter or the CLI (${_hits}); only src/pqxx talks libpq")
  endif()
endforeach()
