# SPDX-License-Identifier: MPL-2.0
# Compile options shared by every skit target, wired through one INTERFACE target.
add_library(skit_options INTERFACE)
target_compile_options(skit_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wno-missing-field-initializers)  # designated initializers rely on member defaults
if(SKIT_STRICT)
  target_compile_options(skit_options INTERFACE -Werror)
endif()
if(SKIT_SANITIZE)
  target_compile_options(skit_options INTERFACE -fsanitize=address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(skit_options INTERFACE -fsanitize=address,undefined)
  target_compile_definitions(skit_options INTERFACE SKIT_SANITIZED=1)
endif()
if(SKIT_TSAN)
  target_compile_options(skit_options INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(skit_options INTERFACE -fsanitize=thread)
  target_compile_definitions(skit_options INTERFACE SKIT_SANITIZED=1 SKIT_TSAN=1)
endif()
