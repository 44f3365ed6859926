# Headers, both libraries (shared and static), pkg-config files and a CMake
# package: find_package(subctx) gives subctx::client and subctx::server.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/subctx DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS subctx_client subctx_server subctx_client_static subctx_server_static
  EXPORT subctxTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT subctxTargets NAMESPACE subctx:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/subctx)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/subctxConfig.cmake.in
  ${PROJECT_BINARY_DIR}/subctxConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/subctx)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/subctxConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/subctxConfig.cmake ${PROJECT_BINARY_DIR}/subctxConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/subctx)

# The .pc files locate the prefix relative to themselves, so an installed
# tree can be moved (and `cmake --install --prefix` works).
file(RELATIVE_PATH PC_PREFIX_FROM_PCDIR "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
foreach(part client server)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/subctx-${part}.pc.in ${PROJECT_BINARY_DIR}/subctx-${part}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/subctx-${part}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
