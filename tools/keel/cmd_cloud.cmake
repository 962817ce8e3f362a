set(KEEL_CLI_LIBS_cloud keel_cloud)
