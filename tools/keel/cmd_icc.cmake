set(KEEL_CLI_LIBS_icc keel_manifest)
