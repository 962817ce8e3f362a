include(KeelGlob)

# Module discovery: every src/<module>/ with a CMakeLists.txt is a module. A module's
# CMakeLists.txt sees KEEL_HOST (host build) or KEEL_FIRMWARE (cross build) and adds only
# what that build needs, so the firmware tree never compiles Linux-only code.
function(keel_add_module_dirs root)
  file(GLOB entries LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/${root}/*)
  list(SORT entries)
  foreach(dir ${entries})
    if(IS_DIRECTORY ${dir} AND EXISTS ${dir}/CMakeLists.txt)
      add_subdirectory(${dir})
    endif()
  endforeach()
endfunction()

if(CMAKE_CROSSCOMPILING)
  set(KEEL_FIRMWARE ON)
  set(KEEL_HOST OFF)
else()
  set(KEEL_FIRMWARE OFF)
  set(KEEL_HOST ON)
endif()
