# subctx_relative_install_rpath(TARGET): an installed executable finds the
# project's shared libraries relative to itself ($ORIGIN/../lib with the
# default layout), so an install under any prefix (`cmake --install build
# --prefix P`) runs without LD_LIBRARY_PATH.  With an absolute bin or lib
# directory there is no relative path to give: the absolute lib directory
# is used.  The build tree keeps CMake's build RPATH (BUILD_WITH_INSTALL_RPATH
# stays off), so programs run from build/ use build/'s libraries.
function(subctx_relative_install_rpath target)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
    set(rpath "${CMAKE_INSTALL_FULL_LIBDIR}")
  else()
    file(RELATIVE_PATH rel "/p/${CMAKE_INSTALL_BINDIR}" "/p/${CMAKE_INSTALL_LIBDIR}")
    set(rpath "$ORIGIN/${rel}")
  endif()
  set_target_properties(${target} PROPERTIES INSTALL_RPATH "${rpath}")
endfunction()
