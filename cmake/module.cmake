# One folder = one static library; its *_test.cc files form one GoogleTest binary registered
# with CTest (label "unit"); *_fuzz.cc (libFuzzer targets) and *_main.cc (programs) are built
# by their own CMakeLists. Used by src/ and tools/wtmongod/.
function(add_folder_module name dir)
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.cc)
  file(GLOB _tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*_test.cc)
  file(GLOB _other CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*_fuzz.cc
                                     ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*_main.cc)
  foreach(_f IN LISTS _tests _other)
    list(REMOVE_ITEM _srcs ${_f})
  endforeach()
  if(_srcs)
    add_library(${name} STATIC ${_srcs})
    target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} PUBLIC ${ARGN})
  else()  # a folder still being written
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARGN})
  endif()
  if(_tests)
    add_executable(${name}_test ${_tests})
    target_link_libraries(${name}_test PRIVATE ${name} GTest::gtest GTest::gtest_main GTest::gmock)
    # WiredTiger finds our extensions with dlsym in the executable (extensions=[local=...]).
    set_target_properties(${name}_test PROPERTIES ENABLE_EXPORTS ON)
    gtest_discover_tests(${name}_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
  endif()
endfunction()
