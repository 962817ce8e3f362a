set(KEEL_CLI_LIBS_release keel_image)
