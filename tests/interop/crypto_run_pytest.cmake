# Runs one pytest file with PYTHON (cmake -P script mode, used by
# crypto.cmake): fails with a clear message when the interpreter is missing
# instead of skipping, as STYLE.md asks of tests.
if(NOT EXISTS "${PYTHON}")
  message(FATAL_ERROR
    "Python for the interop tests not found at ${PYTHON}. "
    "Run tests/testbed/install-deps to create the venv, or configure with "
    "-DM3B_PYTHON=/path/to/python (it needs pytest and cryptography).")
endif()
execute_process(
  COMMAND "${PYTHON}" -m pytest -q -p no:cacheprovider "${TEST_FILE}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pytest ${TEST_FILE} failed (${rc})")
endif()
