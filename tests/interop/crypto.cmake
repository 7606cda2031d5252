# Interop of signing and sealing with an independent implementation
# (Python's cryptography): builds m3b_crypto_tool and registers
# test_crypto_interop.py as a ctest test with label "unit". Include this
# file from tests/CMakeLists.txt.
#
# M3B_PYTHON is the interpreter of the test venv created by
# tests/testbed/install-deps; when it is missing the test fails (it never
# skips) and says how to create it.
set(M3B_PYTHON "$ENV{HOME}/.cache/m3bridge/venv/bin/python" CACHE FILEPATH
    "Python with pytest and cryptography, for the interop tests")

add_executable(m3b_crypto_tool ${CMAKE_CURRENT_LIST_DIR}/m3b_crypto_tool.c)
target_compile_options(m3b_crypto_tool PRIVATE ${M3B_WARNINGS})
target_link_libraries(m3b_crypto_tool PRIVATE m3bridge)

add_test(NAME interop/crypto
  COMMAND ${CMAKE_COMMAND}
    -DPYTHON=${M3B_PYTHON}
    -DTEST_FILE=${CMAKE_CURRENT_LIST_DIR}/test_crypto_interop.py
    -P ${CMAKE_CURRENT_LIST_DIR}/crypto_run_pytest.cmake)
set_tests_properties(interop/crypto PROPERTIES
  LABELS unit TIMEOUT 120
  ENVIRONMENT "M3B_CRYPTO_TOOL=$<TARGET_FILE:m3b_crypto_tool>")
