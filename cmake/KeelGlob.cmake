# keel_add_subdirs(): add every immediate subdirectory that has a CMakeLists.txt, in sorted
# order, so a new model, app, driver or benchmark is picked up without editing its parent.
function(keel_add_subdirs)
  file(GLOB entries LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT entries)
  foreach(dir ${entries})
    if(IS_DIRECTORY ${dir} AND EXISTS ${dir}/CMakeLists.txt)
      add_subdirectory(${dir})
    endif()
  endforeach()
endfunction()
