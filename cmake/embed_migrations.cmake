# Embedding a migration folder at build time. Used by this project and, installed with the
# stepwise CMake package, by applications (find_package(stepwise)).
#
# stepwise_add_migrator(NAME <exe> MIGRATIONS <dir>)
#   Builds the executable <exe>: the whole stepwise command line with the folder <dir> (its
#   *.sql files, releases.json and expected/*.json; for `check`, checks/*.sql and
#   check-allow.txt) embedded, with SHA-256 checksums computed
#   at build time. The folder is validated by the same loader the binary uses at run time, so a
#   bad file name, a duplicate version or an empty file fails the build with the same one-line
#   error naming the file.
#
# stepwise_embed_migrations(<target> <dir>)
#   The same folder as a static library defining stepwise::load_embedded() (for tests).

function(_stepwise_generate_embedded out dir)
  get_filename_component(dir "${dir}" ABSOLUTE)
  file(GLOB _files CONFIGURE_DEPENDS "${dir}/*.sql" "${dir}/releases.json" "${dir}/expected/*.json"
       "${dir}/checks/*.sql" "${dir}/check-allow.txt")
  if(TARGET stepwise-embed)
    set(_embed stepwise-embed)
  else()
    set(_embed stepwise::stepwise-embed)
  endif()
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${_embed} "${dir}" "${out}"
    DEPENDS ${_embed} ${_files}
    COMMENT "Embedding migrations from ${dir}"
    VERBATIM)
endfunction()

function(stepwise_embed_migrations target dir)
  set(_out "${CMAKE_CURRENT_BINARY_DIR}/${target}.cpp")
  _stepwise_generate_embedded("${_out}" "${dir}")
  add_library(${target} STATIC "${_out}")
  if(TARGET stepwise_core)
    target_link_libraries(${target} PUBLIC stepwise_core)
  else()
    target_link_libraries(${target} PUBLIC stepwise::stepwise_core)
  endif()
endfunction()

function(stepwise_add_migrator)
  cmake_parse_arguments(ARG "" "NAME;MIGRATIONS" "" ${ARGN})
  if(NOT ARG_NAME OR NOT ARG_MIGRATIONS)
    message(FATAL_ERROR "stepwise_add_migrator(NAME <executable> MIGRATIONS <folder>)")
  endif()
  set(_out "${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}_migrations.cpp")
  _stepwise_generate_embedded("${_out}" "${ARG_MIGRATIONS}")
  # The embedded set is an object of the executable itself: nothing to get lost in link order.
  add_executable(${ARG_NAME} "${_out}")
  if(TARGET stepwise_main)
    target_link_libraries(${ARG_NAME} PRIVATE stepwise_main)
  else()
    target_link_libraries(${ARG_NAME} PRIVATE stepwise::stepwise_main)
  endif()
  # `serve` loads its HTTP transport, stepwise-http.so, from beside the binary (or lib/stepwise/).
  if(TARGET stepwise-http)
    add_dependencies(${ARG_NAME} stepwise-http)
  elseif(TARGET stepwise::stepwise-http)
    add_custom_command(TARGET ${ARG_NAME} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -E copy_if_different $<TARGET_FILE:stepwise::stepwise-http>
              $<TARGET_FILE_DIR:${ARG_NAME}>
      VERBATIM)
  endif()
endfunction()
