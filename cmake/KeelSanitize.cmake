# Sanitizer configurations for host trees. The asan tree (what `make check` uses) is built with
# clang so that the same tree can also link libFuzzer targets.
if(KEEL_SANITIZE STREQUAL "address+undefined")
  set(KEEL_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer)
elseif(KEEL_SANITIZE STREQUAL "thread")
  set(KEEL_SAN_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
else()
  set(KEEL_SAN_FLAGS "")
endif()
if(KEEL_SAN_FLAGS)
  add_compile_options(${KEEL_SAN_FLAGS} -g)
  add_link_options(${KEEL_SAN_FLAGS})
endif()
if(KEEL_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KEEL_FUZZ needs clang (libFuzzer)")
  endif()
  # Instrument everything for coverage; only fuzz targets link the libFuzzer main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
