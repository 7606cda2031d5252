# libFuzzer targets of the signing and sealing modules (fuzz_verify,
# fuzz_unseal). Include this file from tests/fuzz/CMakeLists.txt; like the
# rest of tests/fuzz it is meant for -DM3B_FUZZ=ON with clang
# (CMAKE_C_COMPILER=clang). The library itself is instrumented for coverage
# (fuzzer-no-link) so the fuzzer sees inside the verifier and unsealer.
#   cmake -B build/fuzz -G Ninja -DM3B_FUZZ=ON -DCMAKE_C_COMPILER=clang \
#         -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build/fuzz --target fuzz_verify fuzz_unseal
#   build/fuzz/tests/fuzz/fuzz_verify -max_total_time=300
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "M3B_FUZZ needs clang (libFuzzer): -DCMAKE_C_COMPILER=clang")
endif()

set(M3B_FUZZ_SANITIZERS -fsanitize=fuzzer,address,undefined
                        -fno-sanitize-recover=undefined)
target_compile_options(m3bridge PRIVATE
  -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)

foreach(name IN ITEMS fuzz_verify fuzz_unseal)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
  target_compile_options(${name} PRIVATE ${M3B_WARNINGS} ${M3B_FUZZ_SANITIZERS}
                         -fno-omit-frame-pointer)
  target_link_options(${name} PRIVATE ${M3B_FUZZ_SANITIZERS})
  target_link_libraries(${name} PRIVATE m3bridge)
endforeach()
