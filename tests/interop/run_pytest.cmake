# Runs one pytest file with the test venv's Python, failing with a clear
# message (instead of "file not found") when the venv has not been made.
if(NOT EXISTS "${PYTHON}")
  message(FATAL_ERROR
    "Python venv not found at ${PYTHON}: run tests/testbed/install-deps "
    "(or configure with -DM3B_PYTHON=/path/to/python having the pins of tests/testbed/requirements.txt)")
endif()
execute_process(COMMAND "${PYTHON}" -m pytest -q -p no:cacheprovider "${TEST}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pytest failed (${rc})")
endif()
