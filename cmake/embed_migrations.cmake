# stepwise_embed_migrations(<target> <dir>)
# Builds a static library <target> holding the migration folder <dir> (its *.sql files and
# releases.json) as byte arrays with SHA-256 checksums. The stepwise-embed tool validates the
# folder with the same loader the binary uses at run time, so a bad file name, a duplicate
# version or an empty file fails the build with the same one-line error.
function(stepwise_embed_migrations target dir)
  get_filename_component(dir "${dir}" ABSOLUTE)
  file(GLOB _files CONFIGURE_DEPENDS "${dir}/*" "${dir}/expected/*")
  set(_out "${CMAKE_CURRENT_BINARY_DIR}/${target}.cpp")
  add_custom_command(
    OUTPUT "${_out}"
    COMMAND stepwise-embed "${dir}" "${_out}"
    DEPENDS stepwise-embed ${_files}
    COMMENT "Embedding migrations from ${dir}"
    VERBATIM)
  add_library(${target} STATIC "${_out}")
  target_link_libraries(${target} PUBLIC stepwise_core)
endfunction()
