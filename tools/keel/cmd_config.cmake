set(KEEL_CLI_LIBS_config keel_config)
