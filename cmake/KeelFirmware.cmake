# Firmware helpers for the cross build.
#
#   keel_fw_executable(<name> SOURCES <files> [LIBS <libs>] [BOARD mps2-an386])
#       links an ELF for the board (vector table, startup, linker script come from the board
#       library keel_board_<board>).
#   keel_fw_test(<name> SOURCES <files> [LIBS <libs>] [TIMEOUT s] [BOARD b] [ARGS qemu args])
#       a firmware test: runs under qemu-system-arm -icount shift=0; its semihosting exit code
#       is the result. Registered in fw-tests.cmake, which the host tree's CTest includes.
set(KEEL_DEFAULT_BOARD mps2-an386)

function(keel_fw_executable name)
  cmake_parse_arguments(E "" "BOARD" "SOURCES;LIBS" ${ARGN})
  if(NOT E_BOARD)
    set(E_BOARD ${KEEL_DEFAULT_BOARD})
  endif()
  add_executable(${name} ${E_SOURCES})
  set_target_properties(${name} PROPERTIES SUFFIX .elf)
  target_link_libraries(${name} PRIVATE ${E_LIBS} keel_board_${E_BOARD})
  target_link_options(${name} PRIVATE -Wl,-Map=$<TARGET_FILE_DIR:${name}>/${name}.map)
endfunction()

function(keel_fw_test name)
  cmake_parse_arguments(T "" "BOARD;TIMEOUT" "SOURCES;LIBS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  set(board_arg "")
  if(T_BOARD)
    set(board_arg BOARD ${T_BOARD})
  endif()
  keel_fw_executable(${name} SOURCES ${T_SOURCES} LIBS ${T_LIBS} ${board_arg})
  set_property(GLOBAL APPEND PROPERTY KEEL_FW_TESTS
    "add_test(fw.${name} \"${CMAKE_SOURCE_DIR}/scripts/qemu-run.sh\" --test \"$<TARGET_FILE:${name}>\" ${T_ARGS})\nset_tests_properties(fw.${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS fw)\n")
endfunction()

function(keel_fw_write_test_list)
  get_property(lines GLOBAL PROPERTY KEEL_FW_TESTS)
  string(JOIN "" content ${lines})
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/fw-tests.cmake CONTENT "${content}")
endfunction()
