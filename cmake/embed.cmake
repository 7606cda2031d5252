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
