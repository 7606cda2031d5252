# m3b_embed_schemas(TARGET DIR): compiles every DIR/*.avsc into TARGET as
# the table declared in bridge/src/schemas_embedded.h. The file is rebuilt
# whenever a schema changes, so the binary can never disagree with schemas/.
function(m3b_embed_schemas target dir)
  file(GLOB avsc CONFIGURE_DEPENDS ${dir}/*.avsc)
  list(SORT avsc)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/schemas_embedded.c)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} "-DFILES=${avsc}"
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${avsc} ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    COMMENT "Embedding Avro schemas"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()

# m3b_embed_file(TARGET FILE SYMBOL): compiles FILE into TARGET as
# `const char SYMBOL[]` (NUL-terminated) and `const size_t SYMBOL_len`
# (bytes, without the NUL). Rebuilt whenever FILE changes, like the schemas.
function(m3b_embed_file target file symbol)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}_embedded.c)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DFILE=${file} -DSYMBOL=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_file_run.cmake
    DEPENDS ${file} ${PROJECT_SOURCE_DIR}/cmake/embed_file_run.cmake
    COMMENT "Embedding ${file}"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
