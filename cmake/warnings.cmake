# The one list of warning flags, as an INTERFACE target every stepwise target links.
add_library(stepwise_warnings INTERFACE)
add_library(stepwise::warnings ALIAS stepwise_warnings)
target_compile_options(stepwise_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                       -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
                       -Wimplicit-fallthrough)
# GCC 12 reports false -Wrestrict positives inside std::string at -O3 (GCC bug 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(stepwise_warnings INTERFACE -Wno-restrict)
endif()
if(STEPWISE_WERROR)
  target_compile_options(stepwise_warnings INTERFACE -Werror)
endif()
