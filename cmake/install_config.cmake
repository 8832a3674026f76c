# Runs at install time (cmake --install): writes the config and the systemd
# unit with the paths of this installation. CMAKE_INSTALL_PREFIX is the
# install-time prefix; files land under $ENV{DESTDIR}.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(TELEKERN_SYSCONFDIR_SETTING)
  set(sysconfdir "${TELEKERN_SYSCONFDIR_SETTING}")
elseif(prefix STREQUAL "/usr")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${prefix}/etc")
endif()
if(TELEKERN_SYSTEMD_UNIT_DIR_SETTING)
  set(unitdir "${TELEKERN_SYSTEMD_UNIT_DIR_SETTING}")
else()
  set(unitdir "${prefix}/lib/systemd/system")
endif()

set(CMAKE_INSTALL_PREFIX "${prefix}")
set(TELEKERN_INSTALL_BINDIR "${prefix}/bin")
set(TELEKERN_INSTALL_MODULES_DIR "${prefix}/${TELEKERN_LIB_SUBDIR}/modules")
set(TELEKERN_INSTALL_CONFIG "${sysconfdir}/telekern/telekernd.yaml")

# The installed config is the documented sample with the installed paths.
file(READ "${TELEKERN_SOURCE_DIR}/deploy/telekernd.yaml" config)
string(REGEX REPLACE "\ndata_dir: [^ ]*( *)" "\ndata_dir: ${TELEKERN_STATE_DIR}\\1" config "${config}")
string(REGEX REPLACE "\nmodules_dir: \"\"( *)" "\nmodules_dir: ${TELEKERN_INSTALL_MODULES_DIR}\\1"
       config "${config}")

set(config_path "$ENV{DESTDIR}${TELEKERN_INSTALL_CONFIG}")
set(unit_path "$ENV{DESTDIR}${unitdir}/telekernd.service")
if(EXISTS "${config_path}")
  # An edited config is never overwritten; the fresh one goes beside it.
  file(READ "${config_path}" existing)
  if(NOT existing STREQUAL config)
    set(config_path "${config_path}.new")
  endif()
endif()
message(STATUS "Installing: ${config_path}")
file(WRITE "${config_path}" "${config}")
message(STATUS "Installing: ${unit_path}")
configure_file("${TELEKERN_SOURCE_DIR}/deploy/systemd/telekernd.service.in" "${unit_path}" @ONLY)
