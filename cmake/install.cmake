# `make install` / `cmake --install`: the daemon, the shell, the shared
# libraries they and the modules link, every real module, the console assets
# (when the tree has them), a config and the systemd unit.
#
#   PREFIX/bin/{telekernd,telesh}
#   PREFIX/lib/telekern/lib*.so             RPATH $ORIGIN/../lib/telekern
#   PREFIX/lib/telekern/modules/telekern_*.so
#   PREFIX/share/telekern/console/           (when present)
#   SYSCONFDIR/telekern/telekernd.yaml       (modules_dir set to the above)
#   SYSTEMD_UNIT_DIR/telekernd.service       (see cmake/install_config.cmake)
#
# Binaries and modules find the libraries through a relative RUNPATH, so a
# DESTDIR staging tree or a relocated prefix works unchanged.
include(GNUInstallDirs)

set(TELEKERN_LIB_SUBDIR "lib/telekern")
set(TELEKERN_SYSCONFDIR "" CACHE PATH
    "Directory that gets telekern/telekernd.yaml (empty: /etc for prefix /usr, else PREFIX/etc)")
set(TELEKERN_SYSTEMD_UNIT_DIR "" CACHE PATH
    "Directory that gets telekernd.service (empty: PREFIX/lib/systemd/system)")
set(TELEKERN_STATE_DIR "/var/lib/telekern" CACHE PATH "Data dir of the installed daemon")

# Every shared library target of the project (protos, sdk, stream...) except
# the test-only ones; walked from the directory tree so new libraries install
# without a list to keep.
function(telekern_collect_shared_libraries dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  set(found)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "SHARED_LIBRARY" AND target MATCHES "^telekern_" AND NOT target MATCHES "test")
      list(APPEND found ${target})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir ${subdirs})
    telekern_collect_shared_libraries(${subdir} sub)
    list(APPEND found ${sub})
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

telekern_collect_shared_libraries(${PROJECT_SOURCE_DIR} telekern_shared_libraries)
get_property(telekern_module_targets GLOBAL PROPERTY TELEKERN_MODULES)

set_target_properties(telekernd telesh PROPERTIES INSTALL_RPATH "$ORIGIN/../${TELEKERN_LIB_SUBDIR}")
set_target_properties(${telekern_shared_libraries} PROPERTIES INSTALL_RPATH "$ORIGIN")
if(telekern_module_targets)
  set_target_properties(${telekern_module_targets} PROPERTIES INSTALL_RPATH "$ORIGIN/..")
endif()

# The kernel loads a private copy of each module from data_dir/.modules, where
# a module's $ORIGIN finds nothing: the module's own dependencies (its proto
# library, libtelekern_stream...) come from the daemon's search path instead.
# glibc walks the loader chain's DT_RPATH (not DT_RUNPATH) for objects without
# a RUNPATH, so telekernd and the modules carry DT_RPATH.
target_link_options(telekernd PRIVATE -Wl,--disable-new-dtags)
foreach(module ${telekern_module_targets})
  target_link_options(${module} PRIVATE -Wl,--disable-new-dtags)
endforeach()

install(TARGETS telekernd telesh RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS ${telekern_shared_libraries}
        LIBRARY DESTINATION ${TELEKERN_LIB_SUBDIR} COMPONENT runtime)
if(telekern_module_targets)
  install(TARGETS ${telekern_module_targets}
          LIBRARY DESTINATION ${TELEKERN_LIB_SUBDIR}/modules COMPONENT runtime)
endif()

# The web console Vite built into the build dir (web/CMakeLists.txt), to
# share/telekern/web: telekernd serves ../share/telekern/web beside its binary.
if(TARGET telekern_web)
  install(DIRECTORY ${TELEKERN_WEB_OUT}/ DESTINATION ${CMAKE_INSTALL_DATADIR}/telekern/web
          COMPONENT runtime)
endif()

# The unit and the config name installed paths, so they are written at
# install time: `cmake --install build --prefix P` and DESTDIR both hold.
install(CODE "
  set(TELEKERN_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(TELEKERN_LIB_SUBDIR \"${TELEKERN_LIB_SUBDIR}\")
  set(TELEKERN_SYSCONFDIR_SETTING \"${TELEKERN_SYSCONFDIR}\")
  set(TELEKERN_SYSTEMD_UNIT_DIR_SETTING \"${TELEKERN_SYSTEMD_UNIT_DIR}\")
  set(TELEKERN_STATE_DIR \"${TELEKERN_STATE_DIR}\")" COMPONENT config)
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/install_config.cmake COMPONENT config)

# What `make install` builds before `cmake --install` (not every test).
add_custom_target(telekern_install_targets)
add_dependencies(telekern_install_targets telekernd telesh ${telekern_shared_libraries}
                 ${telekern_module_targets})
if(TARGET telekern_web)
  add_dependencies(telekern_install_targets telekern_web)
endif()
