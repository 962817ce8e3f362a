# Test registration. Every test gets a TIMEOUT (no test may hang CI) and a label:
#   unit, integration, peers, fuzz, fw, plus any extra labels (e.g. tsan for concurrent code).
#
#   keel_unit_test(NAME <name> SOURCES <files> [LIBS <libs>] [TIMEOUT s] [LABELS l...] [ARGS a...])
#   keel_integration_test(...)   same, label integration, links the process fixture
#   keel_peer_test(...)          same, label peers (against software Keel did not write)
#   keel_fuzz_target(NAME <name> SOURCES <files> [LIBS <libs>] [CORPUS dir])
#       builds a libFuzzer target when KEEL_FUZZ is on and registers a short run
#       (KEEL_FUZZ_SECONDS, default 3) as a CTest test; `make fuzz` runs them longer.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

set(KEEL_FUZZ_SECONDS 3 CACHE STRING "seconds each fuzz target runs under ctest")

function(_keel_test kind)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  set(target ${kind}_${T_NAME})
  add_executable(${target} ${T_SOURCES})
  target_link_libraries(${target} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  if(NOT kind STREQUAL "unit")
    target_link_libraries(${target} PRIVATE keel_fixture)
  endif()
  add_test(NAME ${kind}.${T_NAME} COMMAND ${target} ${T_ARGS})
  set_tests_properties(${kind}.${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT}
    LABELS "${kind};${T_LABELS}"
    ENVIRONMENT "KEEL_SOURCE_DIR=${CMAKE_SOURCE_DIR};KEEL_BUILD_DIR=${CMAKE_BINARY_DIR};CMOCKA_MESSAGE_OUTPUT=stdout")
endfunction()

function(keel_unit_test)
  _keel_test(unit ${ARGN})
endfunction()
function(keel_integration_test)
  _keel_test(integration ${ARGN})
endfunction()
function(keel_peer_test)
  _keel_test(peers ${ARGN})
endfunction()

function(keel_fuzz_target)
  cmake_parse_arguments(F "" "NAME;CORPUS" "SOURCES;LIBS" ${ARGN})
  if(NOT KEEL_FUZZ)
    return()
  endif()
  set(target fuzz_${F_NAME})
  add_executable(${target} ${F_SOURCES})
  target_link_libraries(${target} PRIVATE ${F_LIBS})
  target_link_options(${target} PRIVATE -fsanitize=fuzzer)
  set_property(GLOBAL APPEND PROPERTY KEEL_FUZZ_TARGETS ${target})
  set(corpus ${CMAKE_BINARY_DIR}/fuzz-corpus/${F_NAME})
  set(seeds "")
  if(F_CORPUS)
    set(seeds ${F_CORPUS})
  endif()
  add_test(NAME fuzz.${F_NAME}
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/fuzz-run.sh $<TARGET_FILE:${target}> ${corpus}
            ${KEEL_FUZZ_SECONDS} ${seeds})
  set_tests_properties(fuzz.${F_NAME} PROPERTIES TIMEOUT 120 LABELS fuzz)
endfunction()

# Firmware tests built by the fw tree join this tree's CTest run: the fw tree writes
# fw-tests.cmake (add_test lines for QEMU), included here when ctest runs.
function(keel_fw_include_tests)
  if(NOT KEEL_FW_BUILD_DIR)
    return()
  endif()
  get_filename_component(fwdir ${KEEL_FW_BUILD_DIR} ABSOLUTE BASE_DIR ${CMAKE_SOURCE_DIR})
  file(WRITE ${CMAKE_BINARY_DIR}/fw-tests-include.cmake
    "if(EXISTS \"${fwdir}/fw-tests.cmake\")\n  include(\"${fwdir}/fw-tests.cmake\")\nendif()\n")
  set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY TEST_INCLUDE_FILES
    ${CMAKE_BINARY_DIR}/fw-tests-include.cmake)
endfunction()
