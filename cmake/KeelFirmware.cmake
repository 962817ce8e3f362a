# Firmware helpers, for both builds. The same firmware sources build for a Cortex-M board in the
# cross tree and for the simulator board in the host tree, so a firmware test runs twice: on
# QEMU (fw.<name>) and on the RTOS sim port in virtual time (sim.<name>).
#
#   keel_fw_executable(<name> SOURCES <files> [LIBS <libs>] [BOARD <board>])
#       an ELF for the board (cross: vectors, startup and linker script come from
#       keel_board_<board>, default mps2-an386) or a host program on the sim board.
#   keel_fw_test(<name> SOURCES <files> [LIBS <libs>] [TIMEOUT s] [BOARD b] [ARGS qemu args]
#                [QEMU_ONLY] [SIM_ONLY])
#       a firmware test: exit code (main's return or board_exit) is the result. On QEMU it runs
#       with -icount shift=0 (deterministic) and is listed in fw-tests.cmake, which the host
#       tree's CTest includes.
set(KEEL_DEFAULT_BOARD mps2-an386)

function(keel_fw_executable name)
  cmake_parse_arguments(E "" "BOARD" "SOURCES;LIBS" ${ARGN})
  if(KEEL_HOST)
    add_executable(${name} ${E_SOURCES})
    target_link_libraries(${name} PRIVATE ${E_LIBS} keel_board_sim)
    return()
  endif()
  if(NOT E_BOARD)
    set(E_BOARD ${KEEL_DEFAULT_BOARD})
  endif()
  add_executable(${name} ${E_SOURCES})
  set_target_properties(${name} PROPERTIES SUFFIX .elf)
  target_link_libraries(${name} PRIVATE ${E_LIBS} keel_board_${E_BOARD})
  target_link_options(${name} PRIVATE -Wl,-Map=$<TARGET_FILE_DIR:${name}>/${name}.map)
endfunction()

function(keel_fw_test name)
  cmake_parse_arguments(T "QEMU_ONLY;SIM_ONLY" "BOARD;TIMEOUT" "SOURCES;LIBS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  if(KEEL_HOST)
    if(T_QEMU_ONLY OR NOT KEEL_BUILD_TESTS)
      return()
    endif()
    keel_fw_executable(${name} SOURCES ${T_SOURCES} LIBS ${T_LIBS})
    add_test(NAME sim.${name} COMMAND ${name})
    set_tests_properties(sim.${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS sim)
    return()
  endif()
  if(T_SIM_ONLY)
    return()
  endif()
  set(board_arg "")
  if(T_BOARD)
    set(board_arg BOARD ${T_BOARD})
  endif()
  keel_fw_executable(${name} SOURCES ${T_SOURCES} LIBS ${T_LIBS} ${board_arg})
  set_property(GLOBAL APPEND PROPERTY KEEL_FW_TESTS
    "add_test(fw.${name} \"${CMAKE_SOURCE_DIR}/scripts/qemu-run.sh\" --test --timeout ${T_TIMEOUT} \"$<TARGET_FILE:${name}>\" ${T_ARGS})\nset_tests_properties(fw.${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS fw)\n")
endfunction()

function(keel_fw_write_test_list)
  get_property(lines GLOBAL PROPERTY KEEL_FW_TESTS)
  string(JOIN "" content ${lines})
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/fw-tests.cmake CONTENT "${content}")
endfunction()
