# Applies STEPWISE_SANITIZE (e.g. "address;undefined") to every target in the project.
if(STEPWISE_SANITIZE)
  list(JOIN STEPWISE_SANITIZE "," _stepwise_sanitizers)
  add_compile_options(-fsanitize=${_stepwise_sanitizers} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_stepwise_sanitizers})
endif()
