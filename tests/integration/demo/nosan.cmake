# keel_demo_app_variant(<exe> <dir>): an unsanitized copy of executable <exe>, written to <dir>
# under the same file name, for trees built with sanitizers. keeld runs packaged components in
# its sandbox (no /proc, an address-space limit, keel's own crash handler), where sanitizer
# runtimes cannot run, so the asan tree's integration.demo packages these copies while keeld
# and the tools stay sanitized (as keel_app_target() does for the supervisor tests' apps).
#
# Every static library of the project that <exe> links, directly or not, gets a copy
# "<lib>_nosan" built from the same sources with the same include directories, definitions
# and options, plus -fno-sanitize=all; links to the originals are redirected to the copies,
# while system libraries (imported targets, -lm) stay as they are. Taking the sources from the
# targets themselves means a file added to a library comes along without touching this.

# Collects into ${out} the project static libraries reachable from the link items ${items}.
function(_keel_nosan_walk items out)
  set(seen ${${out}})
  foreach(item ${items})
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
    if(NOT TARGET ${item} OR item IN_LIST seen)
      continue()
    endif()
    get_target_property(type ${item} TYPE)
    get_target_property(imported ${item} IMPORTED)
    if(imported OR NOT type STREQUAL "STATIC_LIBRARY")
      continue()
    endif()
    list(APPEND seen ${item})
    get_target_property(deps ${item} LINK_LIBRARIES)
    get_target_property(ideps ${item} INTERFACE_LINK_LIBRARIES)
    set(next "")
    foreach(d ${deps} ${ideps})
      if(d)
        list(APPEND next ${d})
      endif()
    endforeach()
    _keel_nosan_walk("${next}" seen)
  endforeach()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# Rewrites a list of link items so project libraries name their copies. pkg-config's imported
# targets are visible only in the directory that made them: they are made again here from the
# arguments FindPkgConfig keeps in the cache.
function(_keel_nosan_map items libs out)
  set(mapped "")
  foreach(item ${items})
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" bare "${item}")
    if(bare MATCHES "^PkgConfig::(.+)$" AND NOT TARGET ${bare})
      set(prefix ${CMAKE_MATCH_1})
      if(NOT DEFINED CACHE{__pkg_config_arguments_${prefix}})
        message(FATAL_ERROR "keel_demo_app_variant: ${bare} was not made by pkg_check_modules")
      endif()
      find_package(PkgConfig REQUIRED)
      pkg_check_modules(${prefix} $CACHE{__pkg_config_arguments_${prefix}})
    endif()
    if(bare IN_LIST libs)
      list(APPEND mapped ${bare}_nosan)
    elseif(item)
      list(APPEND mapped ${item})
    endif()
  endforeach()
  set(${out} ${mapped} PARENT_SCOPE)
endfunction()

# Copies the build properties of ${from} onto ${to}, with links redirected to the copies.
function(_keel_nosan_copy from to libs)
  get_target_property(src_dir ${from} SOURCE_DIR)
  get_target_property(srcs ${from} SOURCES)
  set(abs "")
  foreach(s ${srcs})
    if(IS_ABSOLUTE ${s})
      list(APPEND abs ${s})
    else()
      list(APPEND abs ${src_dir}/${s})
    endif()
  endforeach()
  target_sources(${to} PRIVATE ${abs})
  foreach(prop INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS
          INTERFACE_INCLUDE_DIRECTORIES INTERFACE_COMPILE_DEFINITIONS)
    get_target_property(v ${from} ${prop})
    if(v)
      set_property(TARGET ${to} PROPERTY ${prop} ${v})
    endif()
  endforeach()
  foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
    get_target_property(v ${from} ${prop})
    if(v)
      _keel_nosan_map("${v}" "${libs}" mapped)
      set_property(TARGET ${to} PROPERTY ${prop} ${mapped})
    endif()
  endforeach()
  keel_app_target(${to})
endfunction()

function(keel_demo_app_variant exe dir)
  get_target_property(deps ${exe} LINK_LIBRARIES)
  # (the copy of <exe> is target <exe>_nosan, dashes made underscores; asking twice is harmless)
  set(libs "")
  _keel_nosan_walk("${deps}" libs)
  foreach(lib ${libs})
    if(NOT TARGET ${lib}_nosan)
      add_library(${lib}_nosan STATIC)
      # the copy links exactly what the original links, so no other directory's flags leak in
      _keel_nosan_copy(${lib} ${lib}_nosan "${libs}")
    endif()
  endforeach()
  set(name ${exe}_nosan)
  string(REPLACE "-" "_" name ${name})
  if(TARGET ${name})
    return() # another directory asked for it first (the libraries are shared the same way)
  endif()
  add_executable(${name})
  _keel_nosan_copy(${exe} ${name} "${libs}")
  set_target_properties(${name} PROPERTIES OUTPUT_NAME ${exe} RUNTIME_OUTPUT_DIRECTORY ${dir})
endfunction()
