# One helper per target kind, so every target gets the same warnings and layout.

set(TELEKERN_PROTO_ROOT ${PROJECT_SOURCE_DIR}/proto)
set(TELEKERN_GEN_DIR ${PROJECT_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${TELEKERN_GEN_DIR})

function(telekern_warnings target)
  # Designated initializers that leave defaulted fields out are intended style.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
endfunction()

# telekern_add_proto(AREA FILES a.proto ... [DEPS telekern_proto_x ...])
# Compiles the protos of one area once into a shared library telekern_proto_<area>,
# so the kernel, every module and the SDK share one copy of the descriptors.
function(telekern_add_proto area)
  cmake_parse_arguments(ARG "" "" "FILES;DEPS" ${ARGN})
  set(srcs)
  foreach(proto ${ARG_FILES})
    get_filename_component(dir ${proto} DIRECTORY)
    get_filename_component(stem ${proto} NAME_WE)
    set(out ${TELEKERN_GEN_DIR}/${dir}/${stem})
    add_custom_command(
      OUTPUT ${out}.pb.cc ${out}.pb.h ${out}.grpc.pb.cc ${out}.grpc.pb.h
      COMMAND ${Protobuf_PROTOC_EXECUTABLE}
        -I ${TELEKERN_PROTO_ROOT} -I ${Protobuf_INCLUDE_DIRS}
        --cpp_out=${TELEKERN_GEN_DIR} --grpc_out=${TELEKERN_GEN_DIR}
        --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
        ${TELEKERN_PROTO_ROOT}/${proto}
      DEPENDS ${TELEKERN_PROTO_ROOT}/${proto}
      COMMENT "protoc ${proto}")
    list(APPEND srcs ${out}.pb.cc ${out}.grpc.pb.cc)
  endforeach()
  add_library(telekern_proto_${area} SHARED ${srcs})
  target_include_directories(telekern_proto_${area} PUBLIC ${TELEKERN_GEN_DIR})
  target_link_libraries(telekern_proto_${area} PUBLIC gRPC::grpc++ protobuf::libprotobuf ${ARG_DEPS})
  set_target_properties(telekern_proto_${area} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
endfunction()

# telekern_add_library(NAME [SHARED] SOURCES ... DEPS ...)
function(telekern_add_library name)
  cmake_parse_arguments(ARG "SHARED" "" "SOURCES;DEPS;INCLUDES" ${ARGN})
  if(ARG_SHARED)
    add_library(${name} SHARED ${ARG_SOURCES})
  else()
    add_library(${name} STATIC ${ARG_SOURCES})
  endif()
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_include_directories(${name} PUBLIC ${ARG_INCLUDES})
  set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
  telekern_warnings(${name})
endfunction()

# telekern_add_module(NAME SOURCES ... DEPS ... [TEST_FIXTURE])
# A module is a MODULE library telekern_<name>.so in build/modules, loaded by the kernel.
# Fixture modules for tests go to build/test-modules so `make run` never loads them.
function(telekern_add_module name)
  cmake_parse_arguments(ARG "TEST_FIXTURE" "" "SOURCES;DEPS" ${ARGN})
  add_library(telekern_${name} MODULE ${ARG_SOURCES})
  target_link_libraries(telekern_${name} PRIVATE telekern_sdk ${ARG_DEPS})
  set_target_properties(telekern_${name} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden)
  # STB_GNU_UNIQUE symbols make glibc keep a library mapped for good: a
  # module's copy must be unmappable once its instance is gone.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(telekern_${name} PRIVATE -fno-gnu-unique)
  endif()
  if(ARG_TEST_FIXTURE)
    set_target_properties(telekern_${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/test-modules)
  else()
    set_target_properties(telekern_${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/modules)
    set_property(GLOBAL APPEND PROPERTY TELEKERN_MODULES telekern_${name})
  endif()
  telekern_warnings(telekern_${name})
endfunction()

# telekern_add_test(NAME LABEL unit|integration SOURCES ... DEPS ...)
function(telekern_add_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT;RESOURCE_LOCK" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    TELEKERN_BUILD_DIR="${PROJECT_BINARY_DIR}" TELEKERN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  telekern_warnings(${name})
  # RESOURCE_LOCK: tests sharing something global (a system user) never run
  # at the same time under ctest -j.
  if(ARG_RESOURCE_LOCK)
    gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} RESOURCE_LOCK ${ARG_RESOURCE_LOCK}
      DISCOVERY_TIMEOUT 60)
  else()
    gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} DISCOVERY_TIMEOUT 60)
  endif()
endfunction()
