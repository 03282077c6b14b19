# The layers of design.md §2, one static library each, linking only the layers it may use, and a
# check run before anything compiles that fails the build when a file includes a header of a
# layer its own may not use (cmake/check_layers.cmake). Declare layers lowest first:
#   mailgate_layer(NAME smtp DIRS gateway/smtp/ DEPENDS base LIBS ...)
# DIRS are folders (ending in "/", read recursively) or single files; DEPENDS are layers.

set(MAILGATE_LAYER_LINES "")
set(MAILGATE_LAYER_FILES "")

function(mailgate_layer)
  # CHECK_ONLY: the includes are checked, but the files are built elsewhere (the executable's own).
  cmake_parse_arguments(LAYER "CHECK_ONLY" "NAME" "DIRS;DEPENDS;LIBS" ${ARGN})
  set(sources "")
  foreach(dir IN LISTS LAYER_DIRS)
    if(dir MATCHES "/$")
      file(GLOB_RECURSE found CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/${dir}*.cpp" "${PROJECT_SOURCE_DIR}/${dir}*.h")
    else()
      set(found "${PROJECT_SOURCE_DIR}/${dir}")
    endif()
    list(APPEND sources ${found})
  endforeach()
  # What this layer may include: itself, its dependencies, and everything they may include.
  set(allowed ${LAYER_DEPENDS})
  foreach(dependency IN LISTS LAYER_DEPENDS)
    get_property(inherited GLOBAL PROPERTY MAILGATE_LAYER_ALLOWED_${dependency})
    list(APPEND allowed ${inherited})
  endforeach()
  list(REMOVE_DUPLICATES allowed)
  set_property(GLOBAL PROPERTY MAILGATE_LAYER_ALLOWED_${LAYER_NAME} ${allowed})
  string(REPLACE ";" "," dirs_text "${LAYER_DIRS}")
  string(REPLACE ";" "," allowed_text "${allowed}")
  set_property(GLOBAL APPEND_STRING PROPERTY MAILGATE_LAYER_LINES "${LAYER_NAME}|${dirs_text}|${allowed_text}\n")
  set_property(GLOBAL APPEND PROPERTY MAILGATE_LAYER_FILES ${sources})

  if(LAYER_CHECK_ONLY)
    return()
  endif()
  set(target mailgate_${LAYER_NAME})
  list(FILTER sources INCLUDE REGEX "\\.cpp$")
  if(sources)
    add_library(${target} STATIC ${sources})
    set(scope PUBLIC)
    add_dependencies(${target} mailgate_layers)
  else()
    add_library(${target} INTERFACE)
    set(scope INTERFACE)
  endif()
  target_include_directories(${target} ${scope} ${PROJECT_SOURCE_DIR})
  foreach(dependency IN LISTS LAYER_DEPENDS)
    target_link_libraries(${target} ${scope} mailgate_${dependency})
  endforeach()
  if(LAYER_LIBS)
    target_link_libraries(${target} ${scope} ${LAYER_LIBS})
  endif()
endfunction()

# After the last mailgate_layer(): writes the layer table and adds the check.
function(mailgate_check_layers)
  get_property(lines GLOBAL PROPERTY MAILGATE_LAYER_LINES)
  get_property(files GLOBAL PROPERTY MAILGATE_LAYER_FILES)
  set(table ${CMAKE_BINARY_DIR}/layers.txt)
  file(WRITE ${table}.new "${lines}")
  configure_file(${table}.new ${table} COPYONLY)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/layers.stamp
    COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR} -DLAYERS=${table} -DSTAMP=${CMAKE_BINARY_DIR}/layers.stamp
            -P ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake
    DEPENDS ${files} ${table} ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake
    COMMENT "Checking the layers' includes (design.md §2)" VERBATIM)
endfunction()
