# Install rules: the libraries (export set peerlinkTargets, namespace peerlink::), the public headers, a CMake
# package (find_package(peerlink) -> peerlink::transport, ...) and pkg-config files. All locations follow
# GNUInstallDirs; the installed tree is relocatable (cmake --install <build> --prefix <anywhere>).
include(CMakePackageConfigHelpers)

set(PEERLINK_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/peerlink)
set(PEERLINK_PKGCONFIG_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Every library target of ours that exists in this build (plugins are added to the list as they land).
set(PEERLINK_INSTALL_TARGETS)
foreach(target peerlink_transport peerlink_messages peerlink_xmpp peerlink_lan)
  if(TARGET ${target})
    list(APPEND PEERLINK_INSTALL_TARGETS ${target})
  endif()
endforeach()

install(TARGETS ${PEERLINK_INSTALL_TARGETS} EXPORT peerlinkTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/peerlink DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT peerlinkTargets NAMESPACE peerlink:: FILE peerlinkTargets.cmake
  DESTINATION ${PEERLINK_CMAKE_INSTALL_DIR})

# A static peerlink_transport carries its private OpenSSL::Crypto link to consumers, so the package config
# must find OpenSSL; a shared one has it linked in already.
get_target_property(PEERLINK_TRANSPORT_TYPE peerlink_transport TYPE)
if(PEERLINK_TRANSPORT_TYPE STREQUAL "STATIC_LIBRARY")
  set(PEERLINK_NEEDS_OPENSSL ON)
else()
  set(PEERLINK_NEEDS_OPENSSL OFF)
endif()

if(TARGET peerlink_xmpp)
  set(PEERLINK_HAS_XMPP ON)
else()
  set(PEERLINK_HAS_XMPP OFF)
endif()

if(TARGET peerlink_lan)
  set(PEERLINK_HAS_LAN ON)
else()
  set(PEERLINK_HAS_LAN OFF)
endif()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/peerlinkConfig.cmake.in
  ${PROJECT_BINARY_DIR}/peerlinkConfig.cmake
  INSTALL_DESTINATION ${PEERLINK_CMAKE_INSTALL_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/peerlinkConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/peerlinkConfig.cmake ${PROJECT_BINARY_DIR}/peerlinkConfigVersion.cmake
  DESTINATION ${PEERLINK_CMAKE_INSTALL_DIR})

# pkg-config: paths relative to the .pc file's own directory (${pcfiledir}), so the tree stays relocatable.
function(peerlink_pc_path out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
if(IS_ABSOLUTE "${PEERLINK_PKGCONFIG_INSTALL_DIR}")
  set(PEERLINK_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH PEERLINK_PC_PREFIX_REL "/p/${PEERLINK_PKGCONFIG_INSTALL_DIR}" "/p")
  string(REGEX REPLACE "/$" "" PEERLINK_PC_PREFIX_REL "${PEERLINK_PC_PREFIX_REL}")
  set(PEERLINK_PC_PREFIX "\${pcfiledir}/${PEERLINK_PC_PREFIX_REL}")
endif()
peerlink_pc_path(PEERLINK_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
peerlink_pc_path(PEERLINK_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
set(PEERLINK_PC_FILES transport messages)
if(TARGET peerlink_xmpp)
  list(APPEND PEERLINK_PC_FILES xmpp)
endif()
if(TARGET peerlink_lan)
  list(APPEND PEERLINK_PC_FILES lan)
endif()
foreach(pc IN LISTS PEERLINK_PC_FILES)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/peerlink-${pc}.pc.in ${PROJECT_BINARY_DIR}/peerlink-${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/peerlink-${pc}.pc DESTINATION ${PEERLINK_PKGCONFIG_INSTALL_DIR})
endforeach()
